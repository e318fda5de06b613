// deploy/Dockerfile builds: buildah, from an offline Debian base, with the repository as its context (what
// .dockerignore leaves: no tests, no testbed, no build output). Inside the image each binary answers
// --version with this release, and nothing but the shipped code is there.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { DEBIAN_BASE, PrivateBuildah } from '../../testbed/kubelet/buildah';
import { ROOT } from '../../testbed/sys';

const VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const IMAGE = 'localhost/contivk8s:e2e';

describe('e2e: the image (deploy/Dockerfile) builds and runs', function () {
  this.timeout(1_200_000);
  const buildah = new PrivateBuildah(fs.mkdtempSync(path.join(os.tmpdir(), 'ctvimage-')));
  before(() => buildah.importDebianBase());
  after(() => buildah.destroy());

  it('builds from the shipped code alone; netplugin, contivctl and contivk8s answer --version inside it', () => {
    buildah.buildah(
      [
        'bud',
        '--network',
        'host',
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=4096:4096',
        // this machine's registry access goes through a TLS-inspecting proxy whose CA is in the host bundle
        '--secret',
        'id=ca,src=/etc/ssl/certs/ca-certificates.crt',
        '--build-arg',
        `DEBIAN=${DEBIAN_BASE}`,
        '-f',
        'deploy/Dockerfile',
        '-t',
        IMAGE,
        ROOT,
      ],
      { timeout: 1_100_000 },
    );
    expect(buildah.run(IMAGE, ['/opt/contivk8s/bin/netplugin', '--version']).trim()).to.equal(VERSION);
    expect(buildah.run(IMAGE, ['/opt/contivk8s/bin/contivctl', '--version']).trim()).to.equal(VERSION);
    expect(buildah.run(IMAGE, ['/opt/contivk8s/bin/contivk8s', '--version']).trim()).to.equal(`contivk8s ${VERSION}`);
    const shipped = buildah.run(IMAGE, ['ls', '/opt/contivk8s', '/opt/contivk8s/dist']);
    expect(shipped).to.not.match(/\btest\b|\btestbed\b|\bscripts\b/);
    expect(buildah.run(IMAGE, ['/opt/contivk8s/bin/contivctl', 'install-cni', '--help'])).to.include('--mode');
  });
});

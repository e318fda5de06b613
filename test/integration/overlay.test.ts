// The VXLAN overlay over rtnetlink, against the real kernel in a private namespace: the device as configured
// (kept when it matches, replaced with a logged reason when not), the VTEP addresses, and per peer the FDB
// entry, the permanent neighbour and the onlink route, in both families; removed peers leave nothing.
import * as path from 'node:path';
import { expect } from 'chai';
import { inNetns, namedNetns, ROOT, sh, type TestNetns, uniq } from '../../testbed/sys';

interface Run {
  mac?: string;
  warnings?: string[];
  error?: string;
}

describe('integration: the VXLAN overlay over rtnetlink', function () {
  this.timeout(120_000);
  let ns: TestNetns;
  const name = uniq('ctvovl-');
  const run = (spec: { vni: number; peers: number; remove: number }): Run =>
    JSON.parse(sh('ip', ['netns', 'exec', name, process.execPath, path.join(ROOT, 'dist/test/support/overlay-peers.js'), JSON.stringify(spec)]));
  const inside = (cmd: string, args: string[]) => inNetns(ns.path, cmd, args);
  const lines = (text: string) => text.split('\n').filter((l) => l.trim());

  before(() => {
    ns = namedNetns(name);
    inside('ip', ['link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1']);
    inside('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'under0']);
    inside('ip', ['link', 'set', 'under0', 'up']);
  });
  after(() => ns.remove());

  it('programs 50 dual-stack peers: an FDB entry, two permanent neighbours and two onlink routes each', () => {
    const r = run({ vni: 7, peers: 50, remove: 0 });
    expect(r.error).to.equal(undefined);
    expect(r.warnings).to.deep.equal([]);
    const dev = inside('ip', ['-d', 'link', 'show', 'ctvvx']);
    expect(dev).to.include('vxlan id 7 local 192.0.2.1 dev under0').and.include('dstport 8472 nolearning').and.include('mtu 1450');
    expect(dev).to.include(`link/ether ${r.mac}`);
    expect(inside('ip', ['addr', 'show', 'ctvvx']))
      .to.include('inet 10.99.0.0/32')
      .and.include('inet6 fd99::/128');
    expect(lines(inside('ip', ['route', 'show', 'dev', 'ctvvx'])))
      .to.include('10.99.7.0/24 via 10.99.7.0 onlink ')
      .and.have.length(50);
    expect(inside('ip', ['-6', 'route', 'show', 'dev', 'ctvvx'])).to.include('fd99:0:0:7::/64 via fd99:0:0:7:: metric 1024 onlink');
    expect(lines(inside('ip', ['neigh', 'show', 'dev', 'ctvvx']))).to.include('10.99.7.0 lladdr 02:00:00:00:00:07 PERMANENT ');
    expect(lines(inside('ip', ['-6', 'neigh', 'show', 'dev', 'ctvvx'])).filter((l) => l.includes('PERMANENT'))).to.have.length(50);
    const fdb = lines(inside('bridge', ['fdb', 'show', 'dev', 'ctvvx'])).filter((l) => l.includes(' dst '));
    expect(fdb).to.include('02:00:00:00:00:07 dst 192.0.2.8 self permanent').and.have.length(50);
  });

  it('a second start with the same configuration keeps the device and its MAC, and programs the same entries', () => {
    const mac = JSON.parse(inside('ip', ['-j', 'link', 'show', 'ctvvx']))[0].address;
    const r = run({ vni: 7, peers: 50, remove: 0 });
    expect(r.warnings).to.deep.equal([]);
    expect(r.mac).to.equal(mac);
    expect(lines(inside('ip', ['route', 'show', 'dev', 'ctvvx']))).to.have.length(50);
  });

  it('removed peers leave no route, neighbour or FDB entry', () => {
    const r = run({ vni: 7, peers: 50, remove: 50 });
    expect(r.error).to.equal(undefined);
    expect(lines(inside('ip', ['route', 'show', 'dev', 'ctvvx']))).to.deep.equal([]);
    expect(lines(inside('ip', ['-6', 'route', 'show', 'dev', 'ctvvx'])).filter((l) => l.startsWith('fd99:0:0:'))).to.deep.equal([]);
    expect(lines(inside('ip', ['neigh', 'show', 'dev', 'ctvvx']))).to.deep.equal([]);
    expect(lines(inside('bridge', ['fdb', 'show', 'dev', 'ctvvx'])).filter((l) => l.includes(' dst '))).to.deep.equal([]);
  });

  it('a device that is not the configured one is replaced, and the log says why', () => {
    const vni9 = run({ vni: 9, peers: 1, remove: 0 });
    expect(vni9.warnings).to.deep.equal(['replacing the VXLAN device {"device":"ctvvx","why":"its VNI is 7, not 9"}']);
    expect(inside('ip', ['-d', 'link', 'show', 'ctvvx'])).to.include('vxlan id 9 ');
    inside('ip', ['link', 'del', 'ctvvx']);
    inside('ip', ['link', 'add', 'ctvvx', 'type', 'veth', 'peer', 'name', 'ctvvy']);
    const veth = run({ vni: 9, peers: 1, remove: 0 });
    expect(veth.warnings).to.deep.equal(['replacing the VXLAN device {"device":"ctvvx","why":"it is a veth, not vxlan"}']);
    expect(inside('ip', ['-d', 'link', 'show', 'ctvvx'])).to.include('vxlan id 9 ');
  });
});

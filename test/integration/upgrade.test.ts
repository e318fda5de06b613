// An upgrade keeps every pod's address: today's netplugin started on the state dir an earlier release
// wrote (fixtures/state) serves its allocations, rolls back the ADD a crash interrupted, and allocates
// around the kept addresses.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'chai';
import { SCHEMA_VERSION } from '../../src/netplugin/store';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, FIXTURES, hostLinkNames, namedNetns } from '../../testbed/sys';

describe("integration: upgrade from release f3446a4's state dir", () => {
  const np = new TestNetplugin({ subnet: '10.245.0.0/24', subnet6: 'fd00:245::/64', seedState: path.join(FIXTURES, 'state/v1-embedded') });
  before(() => np.start());
  after(() => np.destroy());

  it('keeps every allocation (v4 and v6), rolls back the pending one, and hands out only free addresses', async () => {
    const kept = [
      ['fixture-a', 'eth0', '10.245.0.2/24', 'fd00:245::2/64'],
      ['fixture-b', 'eth0', '10.245.0.3/24', 'fd00:245::3/64'],
      ['fixture-c', 'eth0', '10.245.0.4/24', 'fd00:245::4/64'],
      ['fixture-c', 'net1', '10.245.0.5/24', 'fd00:245::5/64'],
    ];
    const endpoints = await np.endpoints();
    expect(endpoints.map((e) => [e.containerId, e.ifname, e.ipaddress, e.ipv6address])).to.deep.equal(kept);
    expect(endpoints.every((e) => e.state === 'ready')).to.equal(true);

    const ns = namedNetns();
    try {
      const add = await runAdapter(cniEnv('ADD', 'after-upgrade', ns.path), np.conf);
      expect(add.status, add.stdout).to.equal(0);
      const [v4, v6] = add.json.ips.map((ip: { address: string }) => ip.address);
      expect(kept.map((k) => k[2])).to.not.include(v4);
      expect(kept.map((k) => k[3])).to.not.include(v6);
      // a kept pod whose namespace is long gone is freed by its DEL, as after any restart
      expect((await runAdapter(cniEnv('DEL', 'fixture-a', ''), np.conf)).status).to.equal(0);
      expect((await runAdapter(cniEnv('DEL', 'after-upgrade', ns.path), np.conf)).status).to.equal(0);
      expect((await np.endpoints()).map((e) => e.containerId)).to.deep.equal(['fixture-b', 'fixture-c', 'fixture-c']);
    } finally {
      ns.remove();
    }
  });
});

describe('integration: a state dir from a newer netplugin', () => {
  const np = new TestNetplugin({ subnet: '10.245.0.0/24', seedState: path.join(FIXTURES, 'state/v1-embedded') });
  after(() => np.destroy());

  it('is refused at start with a clear message; nothing is created and the file is not rewritten', () => {
    fs.cpSync(np.opts.seedState!, np.stateDir, { recursive: true });
    const file = path.join(np.stateDir, 'netplugin.db');
    const db = new DatabaseSync(file);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    const before = fs.readFileSync(file);
    const r = spawnSync(path.join(BIN, 'netplugin'), np.args(), { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include(`was written by a newer netplugin (schema version ${SCHEMA_VERSION + 5}`);
    expect(fs.readFileSync(file).equals(before)).to.equal(true);
    expect(hostLinkNames()).to.not.include(np.bridge);
    expect(fs.existsSync(np.socket)).to.equal(false);
  });
});

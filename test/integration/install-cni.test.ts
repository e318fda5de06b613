import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parseNetConf } from '../../src/cni/config';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, finished, namedNetns, ROOT, sh, waitFor } from '../../testbed/sys';

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

describe('integration: contivctl install-cni run by two init containers at once, and a conflist that cannot be written', function () {
  this.timeout(180_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-install-race-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  // a stand-in plugin of a real plugin's order of size, with a recognizable tail
  const plugin = path.join(root, 'plugin-new');
  const tail = (file: string) => {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(4096);
      fs.readSync(fd, b, 0, b.length, fs.fstatSync(fd).size - b.length);
      return b.toString('hex');
    } finally {
      fs.closeSync(fd);
    }
  };
  before(() => {
    fs.writeFileSync(plugin, Buffer.concat([fs.readFileSync('/bin/busybox'), Buffer.alloc(24 << 20, 7)]), { mode: 0o755 });
  });
  // each in a PID namespace of its own, where it is PID 1, as every init container is
  const install = (binDir: string, confDir: string) =>
    finished(
      spawn(
        'unshare',
        [
          '--pid',
          '--fork',
          '--',
          path.join(BIN, 'contivctl'),
          'install-cni',
          '--mode',
          'copy',
          '--plugin',
          plugin,
          '--bin-dir',
          binDir,
          '--conf-dir',
          confDir,
          '--json',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );

  it('25 installs at once, each PID 1 of its own PID namespace, all succeed; a reader never sees a partial plugin; no temp file is left', async () => {
    const binDir = path.join(root, 'bin');
    const confDir = path.join(root, 'net.d');
    const target = path.join(binDir, 'contivk8s');
    const want = { size: fs.statSync(plugin).size, tail: tail(plugin) };
    const seen: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        try {
          const size = fs.statSync(target).size;
          if (size !== want.size || tail(target) !== want.tail) seen.push(`size ${size}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || seen.length) seen.push((err as Error).message);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const runs = await Promise.all(Array.from({ length: 25 }, () => install(binDir, confDir)));
    reading = false;
    await reader;
    expect(
      runs.map((r) => r.status).filter((s) => s !== 0),
      runs.map((r) => r.stderr).join(''),
    ).to.deep.equal([]);
    expect(seen.filter((s) => !s.includes('ENOENT'))).to.deep.equal([]);
    expect(fs.readdirSync(binDir)).to.deep.equal(['contivk8s']);
    expect(fs.readdirSync(confDir)).to.deep.equal(['10-contiv.conflist']);
    expect(tail(target)).to.equal(want.tail);
  });

  it('when the conflist cannot be written, the previous plugin is put back and the install fails (exit 2)', async () => {
    const binDir = path.join(root, 'bin2');
    const confDir = path.join(root, 'net2.d');
    fs.mkdirSync(binDir, { recursive: true });
    fs.writeFileSync(path.join(binDir, 'contivk8s'), '#!/bin/sh\necho previous\n', { mode: 0o755 });
    // the conflist's path is taken by a directory that is not empty: its rename fails
    fs.mkdirSync(path.join(confDir, '10-contiv.conflist'), { recursive: true });
    fs.writeFileSync(path.join(confDir, '10-contiv.conflist', 'keep'), '');
    const r = await install(binDir, confDir);
    expect(r.status, r.stdout).to.equal(2);
    expect(fs.readFileSync(path.join(binDir, 'contivk8s'), 'utf8')).to.equal('#!/bin/sh\necho previous\n');
    expect(fs.readdirSync(binDir)).to.deep.equal(['contivk8s']);
    expect(fs.readdirSync(confDir)).to.deep.equal(['10-contiv.conflist']);
  });
});

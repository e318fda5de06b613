import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parseNetConf } from '../../src/cni/config';
import { cniEnv, runAdapter } from '../support/adapter';
import { TestNetplugin } from '../support/netplugin';
import { BIN, namedNetns, sh } from '../support/sys';

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
    const install = (node = process.execPath) => JSON.parse(sh(path.join(BIN, 'contivctl'), ['install-cni', '--mode', 'copy', '--node', node, '--bin-dir', binDir, '--conf-dir', path.join(root, 'host-net.d'), '--socket', np.socket, '--json']));
    const versions = () => fs.readdirSync(binDir).filter((d) => /^contivk8s-[0-9a-f]{12}$/.test(d)).sort();
    before(() => np.start());
    after(() => np.destroy());

    it('ships node, the plugin and ffi-rs into the bin dir; the copy wires a pod with nothing from this checkout', async () => {
      const out = install();
      const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
      // the only link is contivk8s.d -> contivk8s-<hash>, inside the bin dir
      const links = walk(binDir).filter((f) => fs.lstatSync(f).isSymbolicLink());
      expect(links).to.deep.equal([path.join(binDir, 'contivk8s.d')]);
      expect(fs.readlinkSync(links[0])).to.equal(versions()[0]);
      expect(fs.readdirSync(path.join(binDir, 'contivk8s.d/node_modules/@yuuang')).some((d) => d.startsWith('ffi-rs-linux-'))).to.equal(true);

      const ns = namedNetns();
      try {
        const conf = { cniVersion: '1.0.0', name: 'contiv', type: 'contivk8s', socket: np.socket };
        const add = await runAdapter(cniEnv('ADD', 'copied', ns.path), conf, out.plugin);
        expect(add.status, add.stdout + add.stderr).to.equal(0);
        expect(add.json.ips[0].address).to.match(/^10\.250\.12\./);
        expect((await runAdapter(cniEnv('DEL', 'copied', ns.path), conf, out.plugin)).status).to.equal(0);
      } finally {
        ns.remove();
      }
    });

    it('an upgrade swaps versions with one rename and keeps only the previous one', async () => {
      const first = versions();
      const wrappers = [1, 2].map((i) => {
        const w = path.join(root, `node-v${i}`);
        fs.writeFileSync(w, `#!/bin/sh\n# build ${i}\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
        return w;
      });
      install(wrappers[0]);
      const second = versions().filter((v) => !first.includes(v));
      expect(versions()).to.have.length(2);
      expect(fs.readlinkSync(path.join(binDir, 'contivk8s.d'))).to.equal(second[0]);
      install(wrappers[1]);
      expect(versions()).to.not.include(first[0]);
      expect(versions()).to.include(second[0]).and.have.length(2);
      expect(fs.readdirSync(binDir).filter((f) => f.includes('.tmp'))).to.deep.equal([]);
      const r = await runAdapter({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }, path.join(binDir, 'contivk8s'));
      expect(r.json.supportedVersions).to.include('1.1.0');
    });
  });
});

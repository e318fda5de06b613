import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parseNetConf } from '../../src/cni/config';
import { runAdapter } from '../support/adapter';
import { BIN, sh } from '../support/sys';

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
});

// The build never falls back silently: a Bun that cannot run, or cannot compile the adapter, fails it with
// the reason, and the working bin/contivk8s is left as it was.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { BIN, ROOT } from '../../testbed/sys';

describe('integration: scripts/build-bins.js when Bun fails', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-build-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = (bun: string) =>
    spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-bins.js')], { env: { ...process.env, CONTIVK8S_BUN: bun }, encoding: 'utf8' });
  const fakeBun = (name: string, script: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return file;
  };

  it('a Bun that cannot run on this machine (killed by SIGILL, as without AVX2) fails the build and names it', () => {
    const before = fs.statSync(path.join(BIN, 'contivk8s'));
    const r = build(fakeBun('bun-sigill', 'kill -ILL $$'));
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('cannot run on this machine: killed by SIGILL (this CPU lacks an instruction Bun needs');
    const after = fs.statSync(path.join(BIN, 'contivk8s'));
    expect([after.ino, after.mtimeMs]).to.deep.equal([before.ino, before.mtimeMs]);
  });

  it('a Bun that runs but cannot compile fails the build with its output, and nothing is replaced', () => {
    const before = fs.statSync(path.join(BIN, 'contivk8s'));
    const r = build(fakeBun('bun-broken', '[ "$1" = --version ] && { echo 1.4.5; exit 0; }; echo "error: could not compile" >&2; exit 1'));
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('build failed: bun build --compile src/cli/contivk8s.ts: exit status 1').and.include('error: could not compile');
    expect(fs.statSync(path.join(BIN, 'contivk8s')).ino).to.equal(before.ino);
    expect(fs.readdirSync(BIN).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });
});

describe("integration: what the exec'd adapter loads", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-bundle-'));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('its bundle holds no package but the ffi binding, and loads no node: module at start (under Bun, node:fs alone is ~8 MiB per exec)', () => {
    const bun = path.join(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun');
    const r = spawnSync(bun, ['build', '--target=bun', '--outdir', out, path.join(ROOT, 'src/cli/contivk8s.ts')], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const js = fs.readFileSync(path.join(out, 'contivk8s.js'), 'utf8');
    // Bun names each bundled module in a comment line: `// src/cni/env.ts`, `// node_modules/zod/...`
    const modules = [...js.matchAll(/^\/\/ ((?:src|node_modules)\/\S+)$/gm)].map((m) => m[1]);
    expect(modules).to.include('src/cli/contivk8s.ts');
    expect(modules.filter((m) => m.startsWith('node_modules/'))).to.deep.equal(['node_modules/@yuuang/ffi-rs-linux-x64-gnu/ffi-rs.linux-x64-gnu.node']);
    // a builtin is either imported at the top (loaded at start) or required where it is used (indented)
    expect(js.match(/^import .*$/gm) ?? []).to.deep.equal([]);
    expect(js.match(/^\S.*__require\("(?!\.\/)[^"]+"\).*$/gm) ?? []).to.deep.equal([]);
  });
});

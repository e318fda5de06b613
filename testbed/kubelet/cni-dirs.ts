// A runtime's CNI bin_dir and conf_dir, made the way a node gets them: `contivctl install-cni`'s own code
// puts the plugin and our conflist in, and Debian's loopback plugin sits beside it (CRI calls it for lo).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ChainedPlugin, installCni } from '../../src/contivctl/install';
import { BIN } from '../sys';

export const DEBIAN_CNI_DIR = '/usr/lib/cni';
export const NETWORK_NAME = 'contiv';

export interface CniDirs {
  binDir: string;
  confDir: string;
  conflist: string;
}

export function makeCniDirs(dir: string, plugin: { socket: string; logFile?: string; chain?: ChainedPlugin[]; confName?: string; network?: string }): CniDirs {
  const binDir = path.join(dir, 'cni-bin');
  const confDir = path.join(dir, 'cni-conf');
  const { conf } = installCni({
    binDir,
    confDir,
    confName: plugin.confName ?? '10-contiv.conflist',
    networkName: plugin.network ?? NETWORK_NAME,
    socket: plugin.socket,
    logFile: plugin.logFile,
    plugin: path.join(BIN, 'contivk8s'),
    mode: 'symlink',
    chain: plugin.chain,
  });
  // copies, not symlinks: ctr's test mounts this dir over /usr/lib/cni, where a link would point at itself
  for (const p of ['loopback', ...(plugin.chain ?? [])]) {
    fs.copyFileSync(path.join(DEBIAN_CNI_DIR, p), path.join(binDir, p));
    fs.chmodSync(path.join(binDir, p), 0o755);
  }
  return { binDir, confDir, conflist: conf };
}

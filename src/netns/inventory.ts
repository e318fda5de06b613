// Every network namespace on the node and what keeps each alive: the tasks (threads, since setns moves
// one thread) whose net ns it is, and the nsfs bind mounts of it in any mount namespace. A namespace with
// mounts and no task is held alive only by the mounts; that is how pods' namespaces leak.
import * as fs from 'node:fs';
import { ipJson } from '../linux/iproute';

export interface NsMount {
  /** The mount point as the mount namespace that has it sees it. */
  mountPoint: string;
  /** A path to it from our mount namespace (mountPoint itself, or /proc/<pid>/root/<mountPoint>). */
  path: string;
  /** True when the mount is in our own mount namespace (so we can unmount it). */
  local: boolean;
}

export interface NetnsInfo {
  inode: number;
  /** Thread IDs whose network namespace this is. */
  tids: number[];
  mounts: NsMount[];
  /** A path that names it from here, for nsenter. */
  ref: string;
  isHost: boolean;
}

export interface NsAddress {
  ifname: string;
  address: string;
  prefixlen: number;
}

const inodeOf = (link: string): number | undefined => {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
};

/** readlink that answers undefined where the link is gone or unreadable (another process's, without ptrace). */
export function readlink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** The numeric entries of a /proc directory (PIDs, TIDs, fds); none if it is gone or unreadable. */
export const numericEntries = (dir: string): string[] => {
  try {
    return fs.readdirSync(dir).filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
};

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescapeMountinfo = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export interface MountEntry {
  /** The root of the mount within its filesystem (for nsfs: "net:[<inode>]"). */
  root: string;
  mountPoint: string;
  /** Propagation fields such as "shared:5" or "master:1". */
  optional: string[];
  fstype: string;
}

/** The lines of a /proc/<pid>/mountinfo (proc(5)), mount points unescaped. */
export function mountinfoEntries(mountinfo: string): MountEntry[] {
  return mountinfo.split('\n').flatMap((line) => {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    return sep < 0 ? [] : [{ root: fields[3], mountPoint: unescapeMountinfo(fields[4]), optional: fields.slice(6, sep), fstype: fields[sep + 1] }];
  });
}

/** nsfs mounts of network namespaces in one mountinfo text: [inode, mount point]. */
export function netnsMounts(mountinfo: string): [number, string][] {
  return mountinfoEntries(mountinfo).flatMap((m) => {
    const inode = m.fstype === 'nsfs' ? inodeOf(m.root) : undefined;
    return inode === undefined ? [] : [[inode, m.mountPoint] as [number, string]];
  });
}

export function listNetns(): NetnsInfo[] {
  const byInode = new Map<number, NetnsInfo>();
  const entry = (inode: number, ref: string) => {
    const known = byInode.get(inode);
    if (known) return known;
    const e: NetnsInfo = { inode, tids: [], mounts: [], ref, isHost: false };
    byInode.set(inode, e);
    return e;
  };
  const hostInode = inodeOf(readlink('/proc/self/ns/net') ?? '');
  const selfMntNs = readlink('/proc/self/ns/mnt');
  const mountNsSeen = new Set<string>();

  for (const pid of numericEntries('/proc')) {
    for (const tid of numericEntries(`/proc/${pid}/task`)) {
      const inode = inodeOf(readlink(`/proc/${pid}/task/${tid}/ns/net`) ?? '');
      if (inode !== undefined) entry(inode, `/proc/${pid}/task/${tid}/ns/net`).tids.push(Number(tid));
    }
    // bind mounts live in mount namespaces: read each mount namespace's table once
    const mntNs = readlink(`/proc/${pid}/ns/mnt`);
    if (!mntNs || mountNsSeen.has(mntNs)) continue;
    mountNsSeen.add(mntNs);
    let mountinfo: string;
    try {
      mountinfo = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    const local = mntNs === selfMntNs;
    for (const [inode, mountPoint] of netnsMounts(mountinfo)) {
      const path = local ? mountPoint : `/proc/${pid}/root${mountPoint}`;
      const e = entry(inode, path);
      if (!e.mounts.some((m) => m.path === path)) e.mounts.push({ mountPoint, path, local });
    }
  }
  for (const e of byInode.values()) {
    e.isHost = e.inode === hostInode;
    // prefer a mount as the reference: it stays valid while the tasks come and go
    if (e.mounts.length) e.ref = e.mounts[0].path;
  }
  return [...byInode.values()].sort((a, b) => a.inode - b.inode);
}

/**
 * Global-scope addresses (IPv4 and IPv6, not lo) inside the namespace at `ref` (undefined: our own). `ip -j`
 * prints an empty object for each address its scope filter leaves out (a link-local IPv6 beside a global
 * one): those are skipped, not read as an address named undefined.
 */
export function netnsAddresses(ref?: string): NsAddress[] {
  return ipJson(['addr', 'show', 'scope', 'global'], ref).flatMap((l) =>
    (l.addr_info ?? []).flatMap((a) => (a.local ? [{ ifname: l.ifname, address: a.local, prefixlen: a.prefixlen }] : [])),
  );
}

/** The inode of the namespace a path names, if it names one (nsfs file or /proc link). */
export function netnsInodeAt(p: string): number | undefined {
  try {
    const st = fs.statSync(p);
    return st.dev === fs.statSync('/proc/self/ns/net').dev ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

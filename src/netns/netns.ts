import { CniError, ErrorCode } from '../errors';
import { close, type ErrnoError, exists, type FileStat, fstat, isFile, O, open, S, stat } from '../linux/fileio';
import { CLONE_NEWNET, Errno, namespaceType, setns } from '../linux/libc';
import { classifyNetnsPath, procNetnsPath } from './path';

/** The kernel's identity of a namespace: two paths name the same one iff (dev, ino) are equal. */
export interface NsId {
  dev: number;
  ino: number;
}

export function sameNs(a: NsId, b: NsId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export function nsIdOf(path: string): NsId {
  const st = stat(path);
  return { dev: st.dev, ino: st.ino };
}

/** An open, verified network namespace file. */
export interface NetnsHandle extends NsId {
  path: string;
  fd: number;
  close(): void;
}

const SYS_PTRACE_HINT = "reading another process's /proc/<pid>/ns needs CAP_SYS_PTRACE (add SYS_PTRACE to the capabilities)";
const SYS_ADMIN_HINT = 'entering a network namespace needs CAP_SYS_ADMIN (add SYS_ADMIN to the capabilities)';
export const HOST_PID_HINT = 'run with hostPID: true so that this process sees the host PID namespace';

function missingProcessMessage(path: string, pid: number, whoSees: string): CniError {
  return new CniError(
    ErrorCode.ContainerUnknown,
    `network namespace ${path} not found: no process ${pid} in ${whoSees}'s PID namespace`,
    `the process exited, or ${whoSees} is not in the host PID namespace (${HOST_PID_HINT})`,
  );
}

// O_NONBLOCK: never wait on the file (a FIFO's open blocks until a writer comes); O_NOCTTY: a terminal
// never becomes ours
const OPEN_FLAGS = O.RDONLY | O.NONBLOCK | O.NOCTTY;
const NOT_NSFS_HINT = 'expected an nsfs file such as /proc/<pid>/ns/net or /var/run/netns/<name>';

function fileKind(st: FileStat): string {
  const type = st.mode & S.IFMT;
  if (type === S.IFIFO) return 'a FIFO';
  if (type === S.IFDIR) return 'a directory';
  if (type === S.IFSOCK) return 'a socket';
  if (type === S.IFCHR || type === S.IFBLK) return 'a device';
  return 'not a regular file';
}

/** nsfs files (and the /proc links to them) are regular files: anything else is refused by what it is. */
function requireRegularFile(path: string, st: FileStat): void {
  if (!isFile(st)) throw new CniError(ErrorCode.InvalidEnv, `${path} is not a namespace file: it is ${fileKind(st)}`, NOT_NSFS_HINT);
}

function accessError(err: unknown, path: string, pid: number | undefined, whoSees: string): CniError {
  const e = err as ErrnoError;
  if (e.code === 'ENOENT' && pid !== undefined && !exists(`/proc/${pid}`)) return missingProcessMessage(path, pid, whoSees);
  if (e.code === 'ENOENT') return new CniError(ErrorCode.ContainerUnknown, `network namespace ${path} does not exist`);
  if (e.code === 'EACCES' || e.code === 'EPERM') return new CniError(ErrorCode.Io, `permission denied opening ${path}`, SYS_PTRACE_HINT);
  if (e.code === 'ELOOP' || e.code === 'ENAMETOOLONG' || e.code === 'ENOTDIR' || e.code === 'ENXIO') {
    return new CniError(
      ErrorCode.InvalidEnv,
      `${path.length > 200 ? `${path.slice(0, 200)}...` : path} is not a usable namespace path (${e.code})`,
      NOT_NSFS_HINT,
    );
  }
  return new CniError(ErrorCode.Io, `cannot open network namespace ${path}: ${e.message}`);
}

/**
 * Opens `path` and proves it is a network namespace (an nsfs file whose NS_GET_NSTYPE is CLONE_NEWNET):
 * `/etc/passwd` and `/proc/self/ns/mnt` are refused before anything is changed. The path is judged before
 * it is opened and never waited on: nsfs files (and the /proc links to them) are regular files, so a FIFO,
 * a socket, a directory or a device is refused without being opened (opening a FIFO would block until a
 * writer came; opening a device can act on it). `whoSees` names the process for PID-namespace hints.
 */
export function openNetns(path: string, whoSees = 'this process'): NetnsHandle {
  const form = classifyNetnsPath(path);
  if (!form) {
    throw new CniError(ErrorCode.InvalidEnv, `network namespace path ${JSON.stringify(path)} is not absolute`);
  }
  const pid = form.kind === 'proc-pid' || form.kind === 'proc-task' ? form.pid : undefined;
  let fd: number;
  try {
    requireRegularFile(path, stat(path));
    fd = open(path, OPEN_FLAGS);
  } catch (err) {
    throw err instanceof CniError ? err : accessError(err, path, pid, whoSees);
  }
  try {
    const st = fstat(fd);
    // the path may have been replaced between the stat and the open
    requireRegularFile(path, st);
    const type = namespaceType(fd);
    if (type.errno === Errno.ENOTTY || type.errno === Errno.EINVAL) {
      throw new CniError(ErrorCode.InvalidEnv, `${path} is not a namespace file`, NOT_NSFS_HINT);
    }
    if (type.errno) throw new CniError(ErrorCode.Io, `cannot inspect ${path}: errno ${type.errno}`);
    if (type.value !== CLONE_NEWNET) {
      throw new CniError(
        ErrorCode.InvalidEnv,
        `${path} is a namespace but not a network namespace`,
        `NS_GET_NSTYPE returned 0x${type.value.toString(16)}, expected CLONE_NEWNET`,
      );
    }
    return { path, fd, dev: st.dev, ino: st.ino, close: () => close(fd) };
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * Moves the calling (main JS) thread into `ns` and proves it: afterwards `/proc/<pid>/ns/net`, which
 * names the main thread's namespace, must have the target's (dev, ino). Only this thread moves; libuv's
 * worker threads stay where they were, and sockets opened from here on belong to `ns`.
 */
export function enterNetns(ns: NetnsHandle): void {
  const r = setns(ns.fd, CLONE_NEWNET);
  if (r.errno === Errno.EPERM) throw new CniError(ErrorCode.Io, `setns into ${ns.path} refused (EPERM)`, SYS_ADMIN_HINT);
  if (r.errno) throw new CniError(ErrorCode.Io, `setns into ${ns.path} failed: errno ${r.errno}`);
  const now = nsIdOf(procNetnsPath(process.pid));
  if (!sameNs(now, ns)) {
    throw new CniError(ErrorCode.Io, `after setns, ${procNetnsPath(process.pid)} is not ${ns.path}`, `inode ${now.ino} != ${ns.ino}: refusing to go on`);
  }
}

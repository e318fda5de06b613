// The libc calls this project makes itself, through ffi-rs: setns and the NS_GET_NSTYPE ioctl (no runtime has
// a binding for them), poll, and the file calls under src/linux/fileio.ts (the exec'd adapter's files: Bun's
// node:fs costs ~8 MiB and ~5 ms per exec, the binding is loaded anyway to enter the namespace).
// The binding is loaded on first use only: the adapter's VERSION and --version never pay for it.
import type * as FfiRs from 'ffi-rs';
import { CniError, ErrorCode } from '../errors';

export const CLONE_NEWNET = 0x40000000;
// NS_GET_NSTYPE = _IO(0xb7, 0x3) (linux/nsfs.h, Linux >= 4.11): the CLONE_NEW* type of an nsfs fd.
const NS_GET_NSTYPE = 0xb703;

/** The N-API binding under ffi-rs's JS loader: `open` and `load` are all we call. */
type FfiBinding = Pick<typeof FfiRs, 'open' | 'load' | 'DataType'> & { FFITypeTag: { Array: number } };

/**
 * The compiled adapter carries the binding inside itself; Bun writes it once to $TMPDIR (default /tmp, as
 * .bun-<uid>-<hash>.node, owned by root) and loads it from there, which fails where that directory is
 * mounted noexec.
 */
const BINDING_HINT =
  "the adapter's embedded binding is loaded from $TMPDIR (default /tmp): if that is mounted noexec, " +
  "give the container runtime's environment TMPDIR=<a root-owned directory that allows exec>";

let ffi: FfiBinding | undefined;
/** Why the binding could not load: a second require would return a half-made module, so the first answer stands. */
let loadFailure: CniError | undefined;
/** Loads the binding now (a few ms of dlopen), e.g. while the runtime is still writing stdin. */
export function libc(): FfiBinding {
  if (loadFailure) throw loadFailure;
  if (!ffi) {
    // ffi-rs's binding for linux x64 glibc (the platform this project pins its runtimes for), required by
    // its package name rather than through ffi-rs's loader: the loader probes every platform's file (~4 ms
    // of each adapter exec under Bun), and a literal name is what lets `bun build --compile` embed the
    // binding in the executable.
    try {
      const binding = require('@yuuang/ffi-rs-linux-x64-gnu') as FfiBinding;
      binding.open({ library: 'libc', path: '' });
      ffi = binding;
    } catch (err) {
      loadFailure = new CniError(ErrorCode.Io, `cannot load ffi-rs's binding: ${(err as Error).message}`, BINDING_HINT, { cause: err });
      throw loadFailure;
    }
  }
  return ffi;
}

/** A call's return value, and errno (0 unless the call failed) with libc's text for it. */
export interface Syscall {
  value: number;
  errno: number;
  message: string;
}

/** A parameter: a C int, a long (ssize_t, size_t, off_t), a C string, or a buffer passed by pointer (read or filled in place). */
type Param = { int: number } | { long: number } | { str: string } | { buf: Uint8Array };

/** Calls `funcName` from libc; a negative return is a failure whose errno is reported. */
export function call(funcName: string, params: Param[], returns: 'int' | 'long' = 'int'): Syscall {
  const f = libc();
  const { DataType } = f;
  const paramsType = params.map((p) =>
    'int' in p
      ? DataType.I32
      : 'long' in p
        ? DataType.I64
        : 'str' in p
          ? DataType.String
          : // called without ffi-rs's JS loader, the binding takes a buffer only as an array descriptor
            { ffiTypeTag: f.FFITypeTag.Array, type: DataType.U8Array, length: p.buf.length },
  );
  const paramsValue = params.map((p) => ('int' in p ? p.int : 'long' in p ? p.long : 'str' in p ? p.str : p.buf));
  const r = f.load({
    library: 'libc',
    funcName,
    retType: returns === 'int' ? DataType.I32 : DataType.I64,
    paramsType: paramsType as FfiRs.DataType[],
    paramsValue,
    errno: true,
    freeResultMemory: false,
  }) as unknown as { value: number; errnoCode: number; errnoMessage: string };
  const failed = r.value < 0;
  return { value: r.value, errno: failed ? r.errnoCode : 0, message: failed ? r.errnoMessage.replace(/ \(os error \d+\)$/, '') : '' };
}

/** setns(2) on the calling thread, which for JS code is always the main thread. */
export const setns = (fd: number, nstype: number): Syscall => call('setns', [{ int: fd }, { int: nstype }]);

/** ioctl(fd, NS_GET_NSTYPE): the namespace type of fd, or errno (ENOTTY: not an nsfs file). */
export const namespaceType = (fd: number): Syscall => call('ioctl', [{ int: fd }, { long: NS_GET_NSTYPE }]);

const POLLIN = 0x1;
/**
 * poll(2) for input on one fd, waiting at most timeoutMs on this thread: 1 when it is readable (or at its end),
 * 0 on timeout.
 */
export function pollIn(fd: number, timeoutMs: number): Syscall {
  // struct pollfd { int fd; short events; short revents; }
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(POLLIN, 4);
  return call('poll', [{ buf: pollfd }, { int: 1 }, { int: timeoutMs }]);
}

/** The errno values (x86_64 Linux) this project reads from libc calls, by name. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  EROFS: 30,
  EPIPE: 32,
  ENAMETOOLONG: 36,
  ELOOP: 40,
  EDQUOT: 122,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(Errno).map(([name, n]) => [n, name]));
/** An errno's name (ENOENT), or "errno N" for one this project does not name. */
export const errnoName = (errno: number): string => ERRNO_NAMES.get(errno) ?? `errno ${errno}`;

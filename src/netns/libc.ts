// The two libc calls neither runtime has a binding for (setns and the NS_GET_NSTYPE ioctl), through ffi-rs.
// Loaded on first use only: the adapter's VERSION/STATUS paths never pay for the native module.
import type * as FfiRs from 'ffi-rs';
import { CniError, ErrorCode } from '../errors';

export const CLONE_NEWNET = 0x40000000;
// NS_GET_NSTYPE = _IO(0xb7, 0x3) (linux/nsfs.h, Linux >= 4.11): the CLONE_NEW* type of an nsfs fd.
const NS_GET_NSTYPE = 0xb703;

/** The N-API binding under ffi-rs's JS loader: `open` and `load` are all we call. */
type FfiBinding = Pick<typeof FfiRs, 'open' | 'load' | 'DataType'>;

/**
 * The compiled adapter carries the binding inside itself; Bun writes it once to $TMPDIR (default /tmp, as
 * .bun-<uid>-<hash>.node, owned by root) and loads it from there, which fails where that directory is
 * mounted noexec.
 */
const BINDING_HINT =
  "the adapter's embedded binding is loaded from $TMPDIR (default /tmp): if that is mounted noexec, " +
  "give the container runtime's environment TMPDIR=<a root-owned directory that allows exec>";

let ffi: FfiBinding | undefined;
function libc(): FfiBinding {
  if (!ffi) {
    // ffi-rs's binding for linux x64 glibc (the platform this project pins its runtimes for), required by
    // its package name rather than through ffi-rs's loader: the loader probes every platform's file (~4 ms
    // of each adapter exec under Bun), and a literal name is what lets `bun build --compile` embed the
    // binding in the executable.
    try {
      ffi = require('@yuuang/ffi-rs-linux-x64-gnu') as FfiBinding;
    } catch (err) {
      throw new CniError(ErrorCode.Io, `cannot load ffi-rs's binding: ${(err as Error).message}`, BINDING_HINT);
    }
    ffi.open({ library: 'libc', path: '' });
  }
  return ffi;
}

export interface Syscall {
  value: number;
  errno: number;
}

function call(funcName: string, paramsType: FfiRs.DataType[], paramsValue: unknown[]): Syscall {
  const f = libc();
  const r = f.load({ library: 'libc', funcName, retType: f.DataType.I32, paramsType, paramsValue, errno: true, freeResultMemory: false }) as unknown as {
    value: number;
    errnoCode: number;
  };
  return { value: r.value, errno: r.value < 0 ? r.errnoCode : 0 };
}

/** setns(2) on the calling thread, which for JS code is always the main thread. */
export function setns(fd: number, nstype: number): Syscall {
  const { DataType } = libc();
  return call('setns', [DataType.I32, DataType.I32], [fd, nstype]);
}

/** ioctl(fd, NS_GET_NSTYPE): the namespace type of fd, or errno (ENOTTY: not an nsfs file). */
export function namespaceType(fd: number): Syscall {
  const { DataType } = libc();
  return call('ioctl', [DataType.I32, DataType.I64], [fd, NS_GET_NSTYPE]);
}

export const Errno = { EPERM: 1, ENOENT: 2, ESRCH: 3, EACCES: 13, EINVAL: 22, ENOTTY: 25 } as const;

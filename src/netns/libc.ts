// The two libc calls node has no binding for, through ffi-rs. Loaded on first use only: the adapter's
// VERSION/STATUS paths never pay for the native module.
import type * as FfiRs from 'ffi-rs';

export const CLONE_NEWNET = 0x40000000;
// NS_GET_NSTYPE = _IO(0xb7, 0x3) (linux/nsfs.h, Linux >= 4.11): the CLONE_NEW* type of an nsfs fd.
const NS_GET_NSTYPE = 0xb703;

let ffi: typeof FfiRs | undefined;
function libc(): typeof FfiRs {
  if (!ffi) {
    ffi = require('ffi-rs') as typeof FfiRs;
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
  const r = f.load({ library: 'libc', funcName, retType: f.DataType.I32, paramsType, paramsValue, errno: true }) as unknown as { value: number; errnoCode: number };
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

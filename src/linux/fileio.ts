// Synchronous file calls over libc (src/linux/libc.ts), for the code the exec'd adapter runs: entering the
// namespace, its stdin and stdout, its log line, a queued DEL. Under Bun, importing node:fs costs each exec
// ~8 MiB of RSS and ~5 ms of CPU, more than everything else the adapter does; the ffi binding these go
// through is loaded anyway to enter the namespace. Failures throw an ErrnoError whose `code` is the errno's
// name, as node's fs does, so callers read them the same way under either runtime.
import { call, Errno, errnoName, type Syscall } from './libc';

// x86_64 Linux values (the platform the project pins its runtimes for); every open adds O_CLOEXEC
export const O = {
  RDONLY: 0,
  WRONLY: 0o1,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
} as const;
const O_CLOEXEC = 0o2000000;

/** A failed file call, shaped like node's: `code` (ENOENT), `errno`, `syscall`, `path`. */
export class ErrnoError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly syscall: string,
    readonly path: string | undefined,
    text: string,
  ) {
    const code = errnoName(errno);
    super(`${code}: ${text.toLowerCase()}, ${syscall}${path === undefined ? '' : ` '${path}'`}`);
    this.code = code;
  }
}

function check(r: Syscall, syscall: string, path?: string): number {
  if (r.errno) throw new ErrnoError(r.errno, syscall, path, r.message);
  return r.value;
}

/** Retries a call the kernel interrupted (a signal arrived): read, write and fsync may return EINTR. */
function retrying(f: () => Syscall): Syscall {
  for (;;) {
    const r = f();
    if (r.errno !== Errno.EINTR) return r;
  }
}

export function open(path: string, flags: number, mode = 0): number {
  return check(call('open', [{ str: path }, { int: flags | O_CLOEXEC }, { int: mode }]), 'open', path);
}

export function close(fd: number): void {
  check(call('close', [{ int: fd }]), 'close');
}

/** read(2) into buf: the byte count, 0 at the end; EAGAIN (a non-blocking fd with nothing yet) throws. */
export function read(fd: number, buf: Uint8Array): number {
  return check(
    retrying(() => call('read', [{ int: fd }, { buf }, { long: buf.length }], 'long')),
    'read',
  );
}

/** Writes all of `data` (a short write is continued). */
export function writeAll(fd: number, data: string | Uint8Array): void {
  let rest = typeof data === 'string' ? Buffer.from(data) : data;
  while (rest.length) {
    const chunk = rest;
    const n = check(
      retrying(() => call('write', [{ int: fd }, { buf: chunk }, { long: chunk.length }], 'long')),
      'write',
    );
    rest = rest.subarray(n);
  }
}

export function fsync(fd: number): void {
  check(
    retrying(() => call('fsync', [{ int: fd }])),
    'fsync',
  );
}

export const S = { IFMT: 0o170000, IFREG: 0o100000, IFDIR: 0o40000, IFIFO: 0o10000, IFSOCK: 0o140000, IFCHR: 0o20000, IFBLK: 0o60000 } as const;

/** What this project reads of a struct stat. */
export interface FileStat {
  dev: number;
  ino: number;
  /** st_mode: the file type (S.IFMT bits) and permissions */
  mode: number;
  size: number;
  mtimeMs: number;
}

// struct stat on x86_64: st_dev @0, st_ino @8, st_mode @24, st_size @48, st_mtim @88 (144 bytes)
function decodeStat(b: Buffer): FileStat {
  return {
    dev: Number(b.readBigUInt64LE(0)),
    ino: Number(b.readBigUInt64LE(8)),
    mode: b.readUInt32LE(24),
    size: Number(b.readBigInt64LE(48)),
    mtimeMs: Number(b.readBigInt64LE(88)) * 1000 + Number(b.readBigInt64LE(96)) / 1e6,
  };
}

export function fstat(fd: number): FileStat {
  const b = Buffer.alloc(144);
  check(call('fstat', [{ int: fd }, { buf: b }]), 'fstat');
  return decodeStat(b);
}

/** stat(2): follows symlinks, as /proc/<pid>/ns/net needs. */
export function stat(path: string): FileStat {
  const b = Buffer.alloc(144);
  check(call('stat', [{ str: path }, { buf: b }]), 'stat', path);
  return decodeStat(b);
}

export function exists(path: string): boolean {
  return call('access', [{ str: path }, { int: 0 /* F_OK */ }]).errno === 0;
}

export function rename(from: string, to: string): void {
  check(call('rename', [{ str: from }, { str: to }]), 'rename', from);
}

export function unlink(path: string): void {
  check(call('unlink', [{ str: path }]), 'unlink', path);
}

/** mkdir -p: `dir` and any missing parent, each created with `mode`; existing ones are left as they are. */
export function mkdirp(dir: string, mode: number): void {
  const r = call('mkdir', [{ str: dir }, { int: mode }]);
  if (!r.errno || r.errno === Errno.EEXIST) return;
  const parent = dir.slice(0, dir.lastIndexOf('/'));
  if (r.errno !== Errno.ENOENT || !parent) check(r, 'mkdir', dir);
  mkdirp(parent, mode);
  const again = call('mkdir', [{ str: dir }, { int: mode }]);
  if (again.errno && again.errno !== Errno.EEXIST) check(again, 'mkdir', dir);
}

export const isFile = (st: FileStat) => (st.mode & S.IFMT) === S.IFREG;

// The exec'd adapter's log: one JSON line per run, through libc (src/linux/fileio.ts: Bun's node:fs would be
// most of the exec's cost).
import { close, fstat, mkdirp, O, open, rename, stat, unlink, writeAll } from '../linux/fileio';

export const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type Level = keyof typeof LEVELS;

// O_NONBLOCK: a log path that names a FIFO without a reader fails at once instead of holding the runtime
const APPEND_FLAGS = O.WRONLY | O.APPEND | O.CREAT | O.NONBLOCK | O.NOCTTY;

/** Size-based rotation: past `maxBytes` the file becomes <file>.1, <file>.1 becomes <file>.2, ... up to `maxFiles`. */
export interface Rotation {
  maxBytes: number;
  maxFiles: number;
}

/** A lock older than this was left by a run that died mid-rotation: the next run may take it. */
const STALE_LOCK_MS = 10_000;

/**
 * Rotates `file` once, whatever the number of runs that find it too big at the same moment: only the run
 * that creates the lock file (O_EXCL) rotates, and it checks the size again under the lock. Lines appended
 * meanwhile by runs that opened the old file land in <file>.1 (same inode, O_APPEND): none is torn or lost
 * before it ages out.
 */
function rotate(file: string, r: Rotation): void {
  const lock = `${file}.rotating`;
  let fd: number;
  try {
    fd = open(lock, O.WRONLY | O.CREAT | O.EXCL | O.NOCTTY, 0o600);
  } catch {
    try {
      if (Date.now() - stat(lock).mtimeMs > STALE_LOCK_MS) unlink(lock);
    } catch {
      /* gone meanwhile */
    }
    return;
  }
  try {
    if (stat(file).size <= r.maxBytes) return;
    for (let i = r.maxFiles - 1; i >= 1; i--) {
      try {
        rename(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        /* not there yet */
      }
    }
    rename(file, `${file}.1`);
  } finally {
    close(fd);
    unlink(lock);
  }
}

/**
 * Appends one log record in winston's JSON format ({level, message, timestamp, ...meta}) to `file`, creating
 * it 0640 (and its directory 0750) if needed, and rotates it when it has grown past `rotation`. The exec'd
 * adapter writes one line per run this way instead of loading winston. A log that cannot be written, or
 * would have to wait, never fails or delays the CNI operation.
 */
export function appendLogLine(file: string, threshold: Level, level: Level, message: string, meta: Record<string, unknown>, rotation?: Rotation): void {
  if (LEVELS[level] > LEVELS[threshold]) return;
  try {
    // the directory by hand: node:path would be one more module for the adapter to load
    const dir = file.slice(0, file.lastIndexOf('/'));
    if (dir) mkdirp(dir, 0o750);
    const fd = open(file, APPEND_FLAGS, 0o640);
    let size = 0;
    try {
      writeAll(fd, `${JSON.stringify({ level, message, timestamp: new Date().toISOString(), ...meta })}\n`);
      if (rotation) size = fstat(fd).size;
    } finally {
      close(fd);
    }
    if (rotation && size > rotation.maxBytes) rotate(file, rotation);
  } catch {
    /* logging is best effort */
  }
}

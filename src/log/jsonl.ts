import * as fs from 'node:fs';
import * as path from 'node:path';

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type Level = keyof typeof LEVELS;

// (both runtimes add O_CLOEXEC to every open)
const { O_WRONLY, O_APPEND, O_CREAT, O_NONBLOCK, O_NOCTTY } = fs.constants;
// O_NONBLOCK: a log path that names a FIFO without a reader fails at once instead of holding the runtime
const APPEND_FLAGS = O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY;

/**
 * Appends one log record in winston's JSON format ({level, message, timestamp, ...meta}) to `file`, creating
 * its directory if needed. The exec'd adapter writes one line per run this way instead of loading winston.
 * A log that cannot be written, or would have to wait, never fails or delays the CNI operation.
 */
export function appendLogLine(file: string, threshold: Level, level: Level, message: string, meta: Record<string, unknown>): void {
  if (LEVELS[level] > LEVELS[threshold]) return;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    const fd = fs.openSync(file, APPEND_FLAGS, 0o644);
    try {
      fs.writeSync(fd, `${JSON.stringify({ level, message, timestamp: new Date().toISOString(), ...meta })}\n`);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* logging is best effort */
  }
}

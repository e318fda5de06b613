import * as fs from 'node:fs';

export const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type Level = keyof typeof LEVELS;

/**
 * Appends one log record in winston's JSON format ({level, message, timestamp, ...meta}) to `file`.
 * The exec'd adapter writes one line per run this way instead of loading winston (see README, "Performance").
 * A log that cannot be written never fails the CNI operation.
 */
export function appendLogLine(file: string, threshold: Level, level: Level, message: string, meta: Record<string, unknown>): void {
  if (LEVELS[level] > LEVELS[threshold]) return;
  try {
    fs.appendFileSync(file, JSON.stringify({ level, message, timestamp: new Date().toISOString(), ...meta }) + '\n');
  } catch {
    /* logging is best effort */
  }
}

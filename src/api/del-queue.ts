// The DEL queue: the second channel between the adapter and the netplugin. A DEL that cannot reach the
// netplugin (not listening, or not answering in time) is written here, durably, and answered as done, so a
// crash-looping daemon never blocks a pod's teardown or a node's drain (Cilium queues its DELs the same way).
// The netplugin applies the queue at start, before it serves any ADD, and every few seconds after: an
// address is never handed out again before the DEL that frees it. It lives beside the socket, in the
// socket's directory (root-only, 0700): <dirname(socket)>/del-queue/<queuedAt>-<pid>-<random>.json.
import * as fs from 'node:fs';
import { decodeJson, type Refusal } from '../decode';
import { CniError, ErrorCode } from '../errors';
import { checkQueuedDel } from '../generated/validators';
import { close, exists, fsync, mkdirp, O, open, rename, writeAll } from '../linux/fileio';
import type { QueuedDel } from './wire';

export const delQueueDir = (socket: string): string => `${socket.slice(0, socket.lastIndexOf('/')) || '/'}/del-queue`;

/**
 * Writes one queued DEL so that a crash at any point leaves either nothing or the whole entry: a temp file
 * (created exclusively, fsynced), renamed into place, the directory fsynced. Returns its path, or undefined
 * when the socket's directory does not exist: no netplugin ever served there, so no attachment can exist.
 * Written through libc (src/linux/fileio.ts), as the exec'd adapter does all its file work.
 */
export function enqueueDel(socket: string, entry: QueuedDel): string | undefined {
  const dir = delQueueDir(socket);
  if (!exists(dir.slice(0, dir.lastIndexOf('/')) || '/')) return undefined;
  mkdirp(dir, 0o700);
  const name = `${entry.queuedAt}-${process.pid}-${Math.random().toString(36).slice(2, 10)}.json`;
  const tmp = `${dir}/.${name}.tmp`;
  const fd = open(tmp, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW, 0o600);
  try {
    writeAll(fd, JSON.stringify(entry));
    fsync(fd);
  } finally {
    close(fd);
  }
  rename(tmp, `${dir}/${name}`);
  const dirFd = open(dir, O.RDONLY | O.DIRECTORY);
  try {
    fsync(dirFd);
  } finally {
    close(dirFd);
  }
  return `${dir}/${name}`;
}

export interface QueueEntry {
  file: string;
  /** The entry, or why it cannot be one (the netplugin sets such files aside, never applies them). */
  del?: QueuedDel;
  problem?: string;
}

const QUEUED_DEL_REFUSAL: Refusal = {
  notJson: { code: ErrorCode.Decode, msg: 'not JSON' },
  invalid: { code: ErrorCode.InvalidConfig, msg: 'not a queued DEL' },
};

/** The queue's entry files (not yet read) in the order they were queued; none when the queue does not exist. */
export function queuedDelFiles(socket: string): string[] {
  const dir = delQueueDir(socket);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.sort((a, b) => Number(a.split('-')[0]) - Number(b.split('-')[0]) || a.localeCompare(b)).map((n) => `${dir}/${n}`);
}

/** The queued DELs, read, in the order they were queued. */
export function listQueuedDels(socket: string): QueueEntry[] {
  return queuedDelFiles(socket).map((file) => {
    try {
      return { file, del: decodeJson(fs.readFileSync(file, 'utf8'), checkQueuedDel, QUEUED_DEL_REFUSAL) };
    } catch (err) {
      return { file, problem: err instanceof CniError && err.details ? `${err.message}: ${err.details}` : (err as Error).message };
    }
  });
}

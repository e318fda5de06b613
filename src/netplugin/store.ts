// Endpoint records in SQLite (node:sqlite): one row per (container id, ifname) is both the attachment and its
// IP allocation, and the UNIQUE constraints make a duplicate IP impossible even if the allocator were wrong.
// The store is one of two records of ownership: the kernel keeps the other (the mark on each ready host veth),
// so a store that lost rows is repaired at start; a store that cannot be read is refused, never replaced by an
// empty one. Commits are WAL with synchronous=NORMAL: they survive the daemon's crash (kill -9) without an
// fsync each; what a power loss could revert matters only while pods live, and a power loss takes them all
// (see docs/design.md, "Store").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { ErrorCode } from '../errors';

export interface EndpointRow {
  containerId: string;
  ifname: string;
  ipv4: number;
  ipv6: string | null;
  hostVeth: string;
  mac: string;
  netns: string;
  podName: string;
  podNamespace: string;
  state: 'pending' | 'ready';
  createdAt: string;
  /** 'add': made by an ADD; 'adopted': rebuilt at start from the kernel's ownership mark after the store lost it. */
  origin: 'add' | 'adopted';
}

export interface QueuedRelease {
  ip: string;
  containerId: string;
  ifname: string;
  /** The etcd record it must still find; null when queued by schema version 1. */
  value: string | null;
}

/**
 * The schema, one migration per version: MIGRATIONS[i] takes a database from version i to i + 1, recorded in
 * `PRAGMA user_version` in the same transaction. Release f3446a4 wrote version 1's tables without setting
 * user_version, so its state dirs read as 0; migration 1 creates only what is missing, which makes it a no-op
 * for them and the whole schema for a new dir.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL,
    ifname TEXT NOT NULL,
    ipv4 INTEGER NOT NULL UNIQUE,
    ipv6 TEXT UNIQUE,
    host_veth TEXT NOT NULL UNIQUE,
    mac TEXT NOT NULL,
    netns TEXT NOT NULL,
    pod_name TEXT NOT NULL,
    pod_namespace TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (container_id, ifname)
  );
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- cluster mode: IPs freed here whose etcd key is still to be deleted (etcd was unreachable at DEL)
  CREATE TABLE IF NOT EXISTS cluster_releases (ip TEXT PRIMARY KEY, container_id TEXT NOT NULL, ifname TEXT NOT NULL);`,
  // the record a queued release must still find in etcd, so that the release is one conditional delete
  // (NULL for releases queued by version 1: those are compared by container and ifname, as then)
  'ALTER TABLE cluster_releases ADD COLUMN value TEXT;',
  // records rebuilt from the kernel's ownership marks are told apart from those an ADD made
  "ALTER TABLE endpoints ADD COLUMN origin TEXT NOT NULL DEFAULT 'add' CHECK (origin IN ('add', 'adopted'));",
];
export const SCHEMA_VERSION = MIGRATIONS.length;

const COLUMNS = `container_id AS containerId, ifname, ipv4, ipv6, host_veth AS hostVeth, mac, netns,
  pod_name AS podName, pod_namespace AS podNamespace, state, created_at AS createdAt, origin`;

// SQLite's primary result codes (sqlite3.h)
const SQLITE = { CORRUPT: 11, FULL: 13, BUSY: 5, NOTADB: 26, IOERR: 10, CANTOPEN: 14, READONLY: 8 } as const;
const sqliteCode = (err: unknown): number | undefined => {
  const code = (err as { errcode?: number }).errcode;
  return code === undefined ? undefined : code & 0xff;
};

/** Below this much free space in the state dir, an ADD or DEL is refused before it changes anything. */
export const MIN_FREE_BYTES = 64 << 10;

/** A failure of the store, with what it means for the node; the SQLite error is its cause. */
export class StoreError extends Error {
  /** The CNI code a request that met it is answered with. */
  readonly cniCode = ErrorCode.Io;
  constructor(
    message: string,
    readonly kind: 'full' | 'unreadable' | 'busy' | 'newer' | 'io',
    readonly hint: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'StoreError';
  }
}

export class Store {
  private readonly db: DatabaseSync;
  private readonly stmts: Record<string, StatementSync>;
  readonly file: string;

  constructor(readonly stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // the dir may predate us (a DaemonSet's DirectoryOrCreate makes it 0755): container ids are not for
    // everyone. A directory shared with other files (--state-dir /var/lib) keeps its mode; our files are 0600.
    if (fs.readdirSync(stateDir).every((f) => f.startsWith('netplugin.db'))) fs.chmodSync(stateDir, 0o700);
    this.file = path.join(stateDir, 'netplugin.db');
    this.db = this.open();
    try {
      this.openSchema();
      this.requireIntact();
      this.privateFiles();
    } catch (err) {
      this.db.close();
      throw this.translate(err, 'open');
    }
    this.stmts = {
      get: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE container_id = ? AND ifname = ?`),
      byIpv4: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE ipv4 = ?`),
      byIpv6: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE ipv6 = ?`),
      byMac: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE mac = ? LIMIT 1`),
      all: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints ORDER BY created_at`),
      insert: this.db.prepare(`INSERT INTO endpoints
        (container_id, ifname, ipv4, ipv6, host_veth, mac, netns, pod_name, pod_namespace, state, created_at, origin) VALUES
        (@containerId, @ifname, @ipv4, @ipv6, @hostVeth, @mac, @netns, @podName, @podNamespace, @state, @createdAt, @origin)`),
      setState: this.db.prepare('UPDATE endpoints SET state = ? WHERE container_id = ? AND ifname = ?'),
      remove: this.db.prepare('DELETE FROM endpoints WHERE container_id = ? AND ifname = ?'),
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      queueRelease: this.db.prepare('INSERT OR REPLACE INTO cluster_releases (ip, container_id, ifname, value) VALUES (?, ?, ?, ?)'),
      queuedReleases: this.db.prepare('SELECT ip, container_id AS containerId, ifname, value FROM cluster_releases ORDER BY rowid'),
      dropRelease: this.db.prepare('DELETE FROM cluster_releases WHERE ip = ?'),
    };
  }

  private open(): DatabaseSync {
    // created 0600 from its first instant (the daemon's umask), and chmodded below if it predates us
    const old = process.umask(0o077);
    try {
      // a short wait covers a predecessor that is still exiting; the kernel drops its lock when it does
      return new DatabaseSync(this.file, { timeout: 1000 });
    } catch (err) {
      throw this.translate(err, 'open');
    } finally {
      process.umask(old);
    }
  }

  private privateFiles(): void {
    for (const suffix of ['', '-wal', '-shm']) {
      const f = `${this.file}${suffix}`;
      if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
    }
  }

  /**
   * Refuses a newer schema before anything is written, takes the database for this process's life, then
   * migrates. One daemon per state dir: the exclusive lock (taken by the first write) makes a second netplugin
   * on the same dir fail here instead of handing out addresses from a pool it does not know is in use.
   */
  private openSchema(): void {
    const version = this.schemaVersion();
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `--state-dir ${this.stateDir} was written by a newer netplugin (schema version ${version}; this one knows up to ${SCHEMA_VERSION}): ` +
          'refusing to start, and the state dir is left as it is',
        'newer',
        'run that release or a newer one',
      );
    }
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA locking_mode = EXCLUSIVE');
    this.db.exec('BEGIN IMMEDIATE; COMMIT');
    // a migration is synced before any pod's record is written in the new schema
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
    this.db.exec('PRAGMA synchronous = NORMAL');
  }

  /** A database whose pages are damaged is refused like one that cannot be opened (quick_check: ms for a node's rows). */
  private requireIntact(): void {
    const rows = this.db.prepare('PRAGMA quick_check').all() as { quick_check: string }[];
    const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
    if (problems.length) throw new StoreError(`${this.file} is damaged: ${problems.slice(0, 3).join('; ')}`, 'unreadable', this.moveAsideHint());
  }

  private moveAsideHint(): string {
    return (
      `the netplugin refuses to start rather than replace it: move it aside (mv ${this.file} ${this.file}.damaged, and its -wal and -shm) ` +
      'and start again; the records of live pods are rebuilt from the ownership marks on their host veths'
    );
  }

  /** What a SQLite failure means here, with what to do; anything else passes unchanged. */
  private translate(err: unknown, doing: string): unknown {
    if (err instanceof StoreError) return err;
    const code = sqliteCode(err);
    const sqlite = (err as Error).message;
    if (code === SQLITE.BUSY) return new StoreError(`--state-dir ${this.stateDir} is in use by another netplugin`, 'busy', 'stop the other one first', err);
    if (code === SQLITE.NOTADB || code === SQLITE.CORRUPT)
      return new StoreError(`${this.file} cannot be read (${sqlite})`, 'unreadable', this.moveAsideHint(), err);
    if (code === SQLITE.FULL) return this.fullError(err);
    if (code === SQLITE.IOERR || code === SQLITE.CANTOPEN || code === SQLITE.READONLY)
      return new StoreError(`${doing}: ${this.file}: ${sqlite}`, 'io', `check the filesystem of ${this.stateDir}`, err);
    return err;
  }

  private fullError(cause?: unknown): StoreError {
    return new StoreError(
      `the state dir ${this.stateDir} is full`,
      'full',
      `free space on its filesystem: nothing was changed by this request, and the netplugin continues as soon as there is room`,
      cause,
    );
  }

  schemaVersion(): number {
    return Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  }

  /**
   * Runs `work` in one transaction: all of it is committed, or none of it. A failed COMMIT (a full disk) may
   * already have rolled back on its own: ROLLBACK is sent only while a transaction is open, so the error
   * answered is always the cause, never "cannot rollback - no transaction is active".
   */
  private transaction(work: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      work();
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          /* the cause below is what matters */
        }
      }
      throw err;
    }
  }

  /** Runs one write, failures translated. */
  private write<T>(doing: string, work: () => T): T {
    try {
      return work();
    } catch (err) {
      throw this.translate(err, doing);
    }
  }

  /** Refuses up front when the state dir has no room for the next commit, so that a request changes nothing. */
  requireSpace(): void {
    let free: number;
    try {
      const s = fs.statfsSync(this.stateDir);
      free = s.bavail * s.bsize;
    } catch {
      return; // the commit itself will tell
    }
    if (free < MIN_FREE_BYTES) throw this.fullError();
  }

  get(containerId: string, ifname: string): EndpointRow | undefined {
    return this.stmts.get.get(containerId, ifname) as EndpointRow | undefined;
  }

  /** The record holding an address or MAC, to name it when a request for it is refused. */
  holderOf(what: { ipv4: number } | { ipv6: string } | { mac: string }): EndpointRow | undefined {
    const [stmt, value] = 'ipv4' in what ? [this.stmts.byIpv4, what.ipv4] : 'ipv6' in what ? [this.stmts.byIpv6, what.ipv6] : [this.stmts.byMac, what.mac];
    return stmt.get(value) as EndpointRow | undefined;
  }

  all(): EndpointRow[] {
    return this.stmts.all.all() as unknown as EndpointRow[];
  }

  /** Inserts many records in one transaction (the benchmark fills 60 000 addresses with it). */
  insertMany(rows: EndpointRow[]): void {
    this.write('insert records', () =>
      this.transaction(() => {
        for (const row of rows) this.stmts.insert.run(row as unknown as Record<string, SQLInputValue>);
      }),
    );
  }

  /** Inserts a record and moves the allocation cursor in one transaction. */
  insert(row: EndpointRow, cursor: Record<string, string>): void {
    this.write(`record ${row.containerId}/${row.ifname}`, () =>
      this.transaction(() => {
        this.stmts.insert.run(row as unknown as Record<string, SQLInputValue>);
        for (const [k, v] of Object.entries(cursor)) this.stmts.setMeta.run(k, v);
      }),
    );
  }

  setState(containerId: string, ifname: string, state: EndpointRow['state']): void {
    this.write(`mark ${containerId}/${ifname} ${state}`, () => this.stmts.setState.run(state, containerId, ifname));
  }

  remove(containerId: string, ifname: string): boolean {
    return this.write(`remove ${containerId}/${ifname}`, () => Number(this.stmts.remove.run(containerId, ifname).changes) > 0);
  }

  meta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  queueRelease(r: QueuedRelease): void {
    this.write(`queue the etcd release of ${r.ip}`, () => this.stmts.queueRelease.run(r.ip, r.containerId, r.ifname, r.value));
  }

  queuedReleases(): QueuedRelease[] {
    return this.stmts.queuedReleases.all() as unknown as QueuedRelease[];
  }

  /** A queued release was applied (or found moot): it leaves the queue. */
  dropRelease(ip: string): void {
    this.write(`drop the queued release of ${ip}`, () => this.stmts.dropRelease.run(ip));
  }

  close(): void {
    this.db.close();
  }
}

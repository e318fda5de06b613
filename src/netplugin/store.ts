// Endpoint records in SQLite (node:sqlite): one row per (container id, ifname) is both the attachment and its
// IP allocation. WAL with synchronous=FULL makes every committed ADD/DEL survive kill -9 and power loss, and
// the UNIQUE constraints make a duplicate IP impossible even if the allocator were wrong.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';

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
];
export const SCHEMA_VERSION = MIGRATIONS.length;

const COLUMNS = `container_id AS containerId, ifname, ipv4, ipv6, host_veth AS hostVeth, mac, netns,
  pod_name AS podName, pod_namespace AS podNamespace, state, created_at AS createdAt`;

const SQLITE_BUSY = 5;
const isBusy = (err: unknown) => (err as { errcode?: number }).errcode === SQLITE_BUSY;

export class Store {
  private readonly db: DatabaseSync;
  private readonly stmts: Record<string, StatementSync>;

  constructor(readonly stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // a short wait covers a predecessor that is still exiting; the kernel drops its lock when it does
    this.db = new DatabaseSync(path.join(stateDir, 'netplugin.db'), { timeout: 1000 });
    try {
      this.openSchema();
    } catch (err) {
      this.db.close();
      if (isBusy(err)) throw new Error(`--state-dir ${stateDir} is in use by another netplugin`);
      throw err;
    }
    this.stmts = {
      get: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE container_id = ? AND ifname = ?`),
      hasContainer: this.db.prepare('SELECT 1 FROM endpoints WHERE container_id = ? LIMIT 1'),
      all: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints ORDER BY created_at`),
      insert: this.db.prepare(`INSERT INTO endpoints (container_id, ifname, ipv4, ipv6, host_veth, mac, netns, pod_name, pod_namespace, state, created_at)
        VALUES (@containerId, @ifname, @ipv4, @ipv6, @hostVeth, @mac, @netns, @podName, @podNamespace, @state, @createdAt)`),
      setState: this.db.prepare('UPDATE endpoints SET state = ? WHERE container_id = ? AND ifname = ?'),
      remove: this.db.prepare('DELETE FROM endpoints WHERE container_id = ? AND ifname = ?'),
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      queueRelease: this.db.prepare('INSERT OR REPLACE INTO cluster_releases (ip, container_id, ifname, value) VALUES (?, ?, ?, ?)'),
      queuedReleases: this.db.prepare('SELECT ip, container_id AS containerId, ifname, value FROM cluster_releases ORDER BY rowid'),
      dropRelease: this.db.prepare('DELETE FROM cluster_releases WHERE ip = ?'),
    };
  }

  /**
   * Refuses a newer schema before anything is written, takes the database for this process's life, then
   * migrates. One daemon per state dir: the exclusive lock (taken by the first write) makes a second netplugin
   * on the same dir fail here instead of handing out addresses from a pool it does not know is in use.
   */
  private openSchema(): void {
    const version = this.schemaVersion();
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `--state-dir ${this.stateDir} was written by a newer netplugin (schema version ${version}; this one knows up to ${SCHEMA_VERSION}): ` +
          'refusing to start, and the state dir is left as it is; run that release or a newer one',
      );
    }
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA locking_mode = EXCLUSIVE');
    this.db.exec('BEGIN IMMEDIATE; COMMIT');
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  schemaVersion(): number {
    return Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  }

  /** Runs `work` in one transaction: all of it is committed, or none of it. */
  private transaction(work: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      work();
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  get(containerId: string, ifname: string): EndpointRow | undefined {
    return this.stmts.get.get(containerId, ifname) as EndpointRow | undefined;
  }

  /** Whether the container has any attachment already (of another ifname). */
  hasContainer(containerId: string): boolean {
    return this.stmts.hasContainer.get(containerId) !== undefined;
  }

  all(): EndpointRow[] {
    return this.stmts.all.all() as unknown as EndpointRow[];
  }

  /** Inserts many records in one transaction (the benchmark fills 60 000 addresses with it). */
  insertMany(rows: EndpointRow[]): void {
    this.transaction(() => {
      for (const row of rows) this.stmts.insert.run(row as unknown as Record<string, SQLInputValue>);
    });
  }

  /**
   * Inserts a record and moves the allocation cursor in one transaction. `durable: false` commits without
   * waiting for the disk, for a pending record: it matters only while its veth can exist, a power loss takes
   * every veth with it, and a killed process loses nothing the kernel already has. The next durable commit
   * (setState 'ready') makes it durable too, before the runtime is told about the address.
   */
  insert(row: EndpointRow, cursor: Record<string, string>, opts: { durable: boolean } = { durable: true }): void {
    if (!opts.durable) this.db.exec('PRAGMA synchronous = NORMAL');
    try {
      this.transaction(() => {
        this.stmts.insert.run(row as unknown as Record<string, SQLInputValue>);
        for (const [k, v] of Object.entries(cursor)) this.stmts.setMeta.run(k, v);
      });
    } finally {
      if (!opts.durable) this.db.exec('PRAGMA synchronous = FULL');
    }
  }

  setState(containerId: string, ifname: string, state: EndpointRow['state']): void {
    this.stmts.setState.run(state, containerId, ifname);
  }

  remove(containerId: string, ifname: string): boolean {
    return Number(this.stmts.remove.run(containerId, ifname).changes) > 0;
  }

  meta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  queueRelease(r: QueuedRelease): void {
    this.stmts.queueRelease.run(r.ip, r.containerId, r.ifname, r.value);
  }

  queuedReleases(): QueuedRelease[] {
    return this.stmts.queuedReleases.all() as unknown as QueuedRelease[];
  }

  /** A queued release was applied (or found moot): it leaves the queue. */
  dropRelease(ip: string): void {
    this.stmts.dropRelease.run(ip);
  }

  close(): void {
    this.db.close();
  }
}

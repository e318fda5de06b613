// Endpoint records in SQLite: one row per (container id, ifname) is both the attachment and its IP
// allocation. WAL with synchronous=FULL makes every committed ADD/DEL survive kill -9 and power loss,
// and the UNIQUE constraints make a duplicate IP impossible even if the allocator were wrong.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS endpoints (
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
CREATE TABLE IF NOT EXISTS cluster_releases (ip TEXT PRIMARY KEY, container_id TEXT NOT NULL, ifname TEXT NOT NULL);
`;

const COLUMNS = `container_id AS containerId, ifname, ipv4, ipv6, host_veth AS hostVeth, mac, netns,
  pod_name AS podName, pod_namespace AS podNamespace, state, created_at AS createdAt`;

export class Store {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // a short wait covers a predecessor that is still exiting; the kernel drops its lock when it does
    this.db = new Database(path.join(stateDir, 'netplugin.db'), { timeout: 1000 });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      // One daemon per state dir: the first write takes SQLite's lock for the life of the process, so a
      // second netplugin on the same dir fails here instead of handing out addresses from a pool it does
      // not know is in use.
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.exec('BEGIN IMMEDIATE; COMMIT');
    } catch (err) {
      this.db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new Error(`--state-dir ${stateDir} is in use by another netplugin`);
      throw err;
    }
    this.db.exec(SCHEMA);
    this.stmts = {
      get: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints WHERE container_id = ? AND ifname = ?`),
      hasContainer: this.db.prepare(`SELECT 1 FROM endpoints WHERE container_id = ? LIMIT 1`),
      all: this.db.prepare(`SELECT ${COLUMNS} FROM endpoints ORDER BY created_at`),
      insert: this.db.prepare(`INSERT INTO endpoints (container_id, ifname, ipv4, ipv6, host_veth, mac, netns, pod_name, pod_namespace, state, created_at)
        VALUES (@containerId, @ifname, @ipv4, @ipv6, @hostVeth, @mac, @netns, @podName, @podNamespace, @state, @createdAt)`),
      setState: this.db.prepare(`UPDATE endpoints SET state = ? WHERE container_id = ? AND ifname = ?`),
      remove: this.db.prepare(`DELETE FROM endpoints WHERE container_id = ? AND ifname = ?`),
      getMeta: this.db.prepare(`SELECT value FROM meta WHERE key = ?`),
      setMeta: this.db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`),
      queueRelease: this.db.prepare(`INSERT OR REPLACE INTO cluster_releases (ip, container_id, ifname) VALUES (?, ?, ?)`),
      queuedReleases: this.db.prepare(`SELECT ip, container_id AS containerId, ifname FROM cluster_releases ORDER BY rowid`),
      releaseDone: this.db.prepare(`DELETE FROM cluster_releases WHERE ip = ?`),
    };
  }

  get(containerId: string, ifname: string): EndpointRow | undefined {
    return this.stmts.get.get(containerId, ifname) as EndpointRow | undefined;
  }

  /** Whether the container has any attachment already (of another ifname). */
  hasContainer(containerId: string): boolean {
    return this.stmts.hasContainer.get(containerId) !== undefined;
  }

  all(): EndpointRow[] {
    return this.stmts.all.all() as EndpointRow[];
  }

  /** Inserts many records in one transaction (the benchmark fills 60 000 addresses with it). */
  insertMany(rows: EndpointRow[]): void {
    this.db.transaction(() => rows.forEach((row) => this.stmts.insert.run(row)))();
  }

  /** Inserts a record and moves the allocation cursor in one transaction. */
  insert(row: EndpointRow, cursor: Record<string, string>): void {
    this.db.transaction(() => {
      this.stmts.insert.run(row);
      for (const [k, v] of Object.entries(cursor)) this.stmts.setMeta.run(k, v);
    })();
  }

  setState(containerId: string, ifname: string, state: EndpointRow['state']): void {
    this.stmts.setState.run(state, containerId, ifname);
  }

  remove(containerId: string, ifname: string): boolean {
    return this.stmts.remove.run(containerId, ifname).changes > 0;
  }

  meta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  queueRelease(ip: string, containerId: string, ifname: string): void {
    this.stmts.queueRelease.run(ip, containerId, ifname);
  }

  queuedReleases(): { ip: string; containerId: string; ifname: string }[] {
    return this.stmts.queuedReleases.all() as { ip: string; containerId: string; ifname: string }[];
  }

  releaseDone(ip: string): void {
    this.stmts.releaseDone.run(ip);
  }

  close(): void {
    this.db.close();
  }
}

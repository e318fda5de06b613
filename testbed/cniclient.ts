// The libcni / go-cni client (testbed/cniclient/main.go), built once per run from Debian's Go sources in
// GOPATH mode (golang-go, golang-github-appc-cni-dev, golang-github-containerd-go-cni-dev: no download).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finished, ROOT } from './sys';

const SOURCE = path.join(ROOT, 'testbed/cniclient/main.go');
const BINARY = path.join(ROOT, 'dist/testbed/cniclient/cniclient');

/** Builds the client if it is missing or older than its source; returns its path. */
export function cniClient(): string {
  if (fs.existsSync(BINARY) && fs.statSync(BINARY).mtimeMs >= fs.statSync(SOURCE).mtimeMs) return BINARY;
  fs.mkdirSync(path.dirname(BINARY), { recursive: true });
  const cache = path.join(ROOT, 'dist/testbed/cniclient/gocache');
  execFileSync('go', ['build', '-o', BINARY, SOURCE], {
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: cache, GOFLAGS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return BINARY;
}

export interface CniClientRequest {
  op: 'add' | 'check' | 'del' | 'setup' | 'teardown';
  binDirs: string[];
  confFiles: string[];
  cacheDir: string;
  netns: string;
  containerId: string;
  ifname?: string;
  capabilityArgs?: Record<string, unknown>;
  args?: [string, string][];
}

export interface CniClientAnswer {
  status: number;
  result?: any;
  error?: string;
  /** The plugin's CNI error code, when it failed with one. */
  code?: number;
}

/** One libcni (add, check, del) or go-cni (setup, teardown) operation. */
export async function runCniClient(r: CniClientRequest): Promise<CniClientAnswer> {
  const child = spawn(cniClient(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(JSON.stringify({ ifname: 'eth0', ...r }));
  const out = await finished(child);
  let parsed: { result?: unknown; error?: string; code?: number } = {};
  try {
    parsed = JSON.parse(out.stdout);
  } catch {
    parsed = { error: `${out.stdout}${out.stderr}`.trim() || `exit ${out.status}` };
  }
  return { status: out.status ?? -1, ...parsed };
}

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { BIN } from './sys';

export interface AdapterRun {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, any>;
  durationMs: number;
  /** True when the safety timer had to kill it: it hung. */
  killed: boolean;
}

export interface RunOptions {
  /** Leave stdin open after writing the config, as a stuck runtime would. */
  keepStdinOpen?: boolean;
  /** Kill it after this long (default 60 s), so that a hang fails a test instead of stalling the suite. */
  killAfterMs?: number;
}

export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Execs bin/contivk8s as a runtime does: CNI_* env only (plus PATH), config on stdin. */
export function runAdapter(
  env: Record<string, string>,
  stdin: string | object,
  plugin = path.join(BIN, 'contivk8s'),
  opts: RunOptions = {},
): Promise<AdapterRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(plugin, [], { cwd: '/', env: { PATH: CLEAN_PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let killed = false;
    const safety = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, opts.killAfterMs ?? 60_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(safety);
      let json: Record<string, any> = {};
      try {
        json = stdout.trim() ? JSON.parse(stdout) : {};
      } catch {
        json = { unparsable: stdout };
      }
      resolve({ status: status ?? -1, stdout, stderr, json, durationMs: performance.now() - started, killed });
    });
    // a plugin that exits before reading all of stdin is not an error here
    child.stdin.on('error', () => undefined);
    const text = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
    if (opts.keepStdinOpen) child.stdin.write(text);
    else child.stdin.end(text);
  });
}

export function cniEnv(command: string, containerId: string, netns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME=${containerId};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    ...extra,
  };
}

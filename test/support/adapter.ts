import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { BIN } from './sys';

export interface AdapterRun {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, any>;
}

export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Execs bin/contivk8s as a runtime does: CNI_* env only (plus PATH), config on stdin. */
export function runAdapter(env: Record<string, string>, stdin: string | object, plugin = path.join(BIN, 'contivk8s')): Promise<AdapterRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(plugin, [], { cwd: '/', env: { PATH: CLEAN_PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => {
      let json: Record<string, any> = {};
      try {
        json = stdout.trim() ? JSON.parse(stdout) : {};
      } catch {
        json = { unparsable: stdout };
      }
      resolve({ status: status ?? -1, stdout, stderr, json });
    });
    child.stdin.end(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
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

// The CNI_* variables a runtime execs the plugin with: checked (by the function generated from schemas.ts's zod
// schema), then read for the command they name.
import { CniError, ErrorCode } from '../errors';
import { checkEnv } from '../generated/validators';
import { interfaceNameProblem, isContainerId } from '../linux/ifname';
import type { CniEnvInput, COMMANDS } from './schemas';

export type Command = (typeof COMMANDS)[number];

export interface CniArgs {
  K8S_POD_NAME?: string;
  K8S_POD_NAMESPACE?: string;
  K8S_POD_INFRA_CONTAINER_ID?: string;
  K8S_POD_UID?: string;
  /** A static IP (or several, comma-separated), as host-local and podman use it. */
  IP?: string;
  /** A static MAC for the pod interface. */
  MAC?: string;
}
const ARG_KEYS = ['K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID', 'IP', 'MAC'] as const;
const KNOWN_ARGS = new Set<string>([...ARG_KEYS, 'IgnoreUnknown']);

/** Parses CNI_ARGS ("K=V;K=V"). Unknown keys are an error unless IgnoreUnknown is true, as in libcni's types.LoadArgs. */
export function parseCniArgs(raw: string | undefined): CniArgs {
  const pairs = new Map<string, string>();
  for (const part of (raw ?? '').split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(ErrorCode.InvalidEnv, `CNI_ARGS: malformed pair ${JSON.stringify(part)}`, 'expected KEY=VALUE separated by ";"');
    pairs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const ignoreUnknown = ['1', 'true'].includes((pairs.get('IgnoreUnknown') ?? '').toLowerCase());
  const unknown = [...pairs.keys()].filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length && !ignoreUnknown) {
    throw new CniError(ErrorCode.InvalidEnv, `CNI_ARGS: unknown keys ${unknown.join(', ')}`, 'set IgnoreUnknown=1 to ignore them');
  }
  const args: CniArgs = {};
  for (const key of ARG_KEYS) {
    const v = pairs.get(key);
    if (v) args[key] = v;
  }
  return args;
}

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  path: string;
  args: CniArgs;
}

// Which variables each command needs; the rest are ignored (libcni sends "dummy" for VERSION).
const REQUIRED: Record<Command, (keyof CniEnvInput)[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

/** Reads and validates the CNI_* variables for the command they name. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const checked = checkEnv(env);
  if (!checked.ok) throw new CniError(ErrorCode.InvalidEnv, 'invalid CNI environment', checked.issues);
  const e = checked.value;
  const command = e.CNI_COMMAND;
  const missing = REQUIRED[command].filter((k) => !e[k]);
  if (missing.length) {
    throw new CniError(ErrorCode.InvalidEnv, `missing environment for ${command}: ${missing.join(', ')}`);
  }
  const result: CniEnv = {
    command,
    containerId: e.CNI_CONTAINERID ?? '',
    netns: e.CNI_NETNS ?? '',
    ifname: e.CNI_IFNAME ?? '',
    path: e.CNI_PATH ?? '',
    args: {},
  };
  if (command === 'VERSION' || command === 'GC' || command === 'STATUS') return result;
  if (!isContainerId(result.containerId)) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      `CNI_CONTAINERID ${JSON.stringify(result.containerId)} is not a valid container id`,
      'alphanumerics, "_", "." and "-", starting with an alphanumeric',
    );
  }
  const ifnameProblem = interfaceNameProblem(result.ifname);
  if (ifnameProblem) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      `CNI_IFNAME ${JSON.stringify(result.ifname)} ${ifnameProblem}`,
      'a Linux interface name: 1-15 bytes, no "/", ":" or whitespace',
    );
  }
  result.args = parseCniArgs(e.CNI_ARGS);
  return result;
}

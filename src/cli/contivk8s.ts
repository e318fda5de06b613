// The CNI plugin: exec'd by the runtime once per command with CNI_* in the environment and the network
// configuration on stdin. It moves its own main thread into the pod's namespace, whatever form the runtime
// named it in, and asks the netplugin to wire /proc/<own-pid>/ns/net, which every contiv netplugin understands.
import * as fs from 'node:fs';
import { type ClientOptions, addPod, checkPod, delPod, gc, healthy } from '../api/client';
import type { PodAttr, RspAddPod } from '../api/wire';
import { type NetConf, parseNetConf, replyVersion } from '../cni/config';
import { type CniEnv, parseEnv } from '../cni/env';
import { CniError, ErrorCode, PluginErrorCode, asCniError } from '../cni/errors';
import { prevResultAddresses, renderResult } from '../cni/result';
import { SUPPORTED_VERSIONS, requireCommandInVersion } from '../cni/version';
import { appendLogLine } from '../log/jsonl';
import { type NetnsHandle, enterNetns, nsIdOf, openNetns, sameNs } from '../netns/netns';
import { procNetnsPath, runtimeConvention } from '../netns/path';

interface Outcome {
  stdout?: unknown;
  rewrittenNetns?: string;
}

function clientOptions(conf: NetConf): ClientOptions {
  return { socket: conf.socket, timeoutMs: conf.timeoutMs };
}

/** Opens CNI_NETNS, refuses the plugin's own (host) namespace, and moves the main thread into it. */
function enterPodNetns(path: string): NetnsHandle {
  const ns = openNetns(path, 'the plugin');
  try {
    if (sameNs(ns, nsIdOf('/proc/self/ns/net'))) {
      throw new CniError(ErrorCode.InvalidEnv, `CNI_NETNS ${path} is the plugin's own network namespace`, 'refusing to wire the host namespace as a pod');
    }
    enterNetns(ns);
    return ns;
  } catch (err) {
    ns.close();
    throw err;
  }
}

function podAttr(env: CniEnv, ns?: NetnsHandle): PodAttr {
  return {
    K8S_POD_NAME: env.args.K8S_POD_NAME,
    K8S_POD_NAMESPACE: env.args.K8S_POD_NAMESPACE,
    K8S_POD_INFRA_CONTAINER_ID: env.args.K8S_POD_INFRA_CONTAINER_ID ?? env.containerId,
    K8S_POD_UID: env.args.K8S_POD_UID,
    CNI_CONTAINERID: env.containerId,
    CNI_IFNAME: env.ifname,
    ...(ns ? { CNI_NETNS: procNetnsPath(process.pid), CONTIV_NETNS_DEV: ns.dev, CONTIV_NETNS_INODE: ns.ino, CONTIV_ORIG_NETNS: env.netns } : {}),
  };
}

async function cmdAdd(env: CniEnv, conf: NetConf): Promise<Outcome> {
  const ns = enterPodNetns(env.netns);
  // We stay in the namespace (and keep the fd) until the netplugin has answered.
  const rsp: RspAddPod = await addPod(clientOptions(conf), podAttr(env, ns));
  if (!rsp.ipaddress) throw new CniError(ErrorCode.Io, 'netplugin answered AddPod without an IP address');
  const result = renderResult(conf.cniVersion, {
    hostInterface: { name: rsp.hostveth ?? '' },
    podInterface: { name: env.ifname, mac: rsp.mac, sandbox: env.netns },
    ipv4: { address: rsp.ipaddress, gateway: rsp.gateway },
    ...(rsp.ipv6address ? { ipv6: { address: rsp.ipv6address, gateway: rsp.ipv6gateway } } : {}),
    defaultRoute: rsp.defaultroute !== false, // contiv's netplugin always routes
  });
  return { stdout: result, rewrittenNetns: procNetnsPath(process.pid) };
}

async function cmdDel(env: CniEnv, conf: NetConf, log: Logger): Promise<Outcome> {
  // DEL must free the IP and the host veth even when the namespace is already gone (kubernetes #57465):
  // an empty, vanished or unusable CNI_NETNS is sent as no namespace at all.
  let ns: NetnsHandle | undefined;
  if (env.netns) {
    try {
      ns = enterPodNetns(env.netns);
    } catch (err) {
      log('warn', 'DEL without namespace', { netns: env.netns, reason: asCniError(err).message });
    }
  }
  await delPod(clientOptions(conf), podAttr(env, ns));
  return { rewrittenNetns: ns ? procNetnsPath(process.pid) : '' };
}

async function cmdCheck(env: CniEnv, conf: NetConf): Promise<Outcome> {
  if (!conf.prevResult) throw new CniError(ErrorCode.InvalidConfig, 'CHECK needs prevResult in the network configuration');
  const ns = enterPodNetns(env.netns);
  const rsp = await checkPod(clientOptions(conf), podAttr(env, ns));
  const observed = new Set(rsp.observed ?? []);
  const expected = prevResultAddresses(conf.prevResult, env.ifname);
  const missing = expected.filter((a) => !observed.has(a));
  if (missing.length) {
    throw new CniError(PluginErrorCode.CheckFailed, `${env.ifname} in ${env.netns} lacks ${missing.join(', ')}`, `found: ${[...observed].join(', ') || 'none'}`);
  }
  if (rsp.ipaddress && !expected.includes(rsp.ipaddress)) {
    throw new CniError(PluginErrorCode.CheckFailed, `prevResult does not carry the allocated address ${rsp.ipaddress}`);
  }
  return { rewrittenNetns: procNetnsPath(process.pid) };
}

async function cmdGc(conf: NetConf): Promise<Outcome> {
  if (!conf.validAttachments) {
    throw new CniError(ErrorCode.InvalidConfig, 'GC needs cni.dev/valid-attachments', 'without it every attachment would be freed');
  }
  await gc(clientOptions(conf), { validAttachments: conf.validAttachments });
  return {};
}

async function cmdStatus(conf: NetConf): Promise<Outcome> {
  if (!(await healthy(clientOptions(conf)))) {
    throw new CniError(ErrorCode.PluginNotAvailable, `netplugin is not available on ${conf.socket}`);
  }
  return {};
}

type Logger = (level: 'error' | 'warn' | 'info', message: string, meta: Record<string, unknown>) => void;

function write(value: unknown): void {
  fs.writeSync(1, JSON.stringify(value) + '\n');
}

async function main(): Promise<number> {
  const started = process.hrtime.bigint();
  let stdin = '';
  try {
    stdin = fs.readFileSync(0, 'utf8');
  } catch {
    /* no stdin: an empty config, reported below */
  }
  const cniVersion = replyVersion(stdin);
  let conf: NetConf | undefined;
  let env: CniEnv | undefined;
  const log: Logger = (level, message, meta) => {
    if (conf?.logFile) appendLogLine(conf.logFile, conf.logLevel, level, message, { pid: process.pid, command: env?.command, containerId: env?.containerId, ...meta });
  };
  try {
    env = parseEnv(process.env);
    if (env.command === 'VERSION') {
      write({ cniVersion, supportedVersions: SUPPORTED_VERSIONS });
      return 0;
    }
    conf = parseNetConf(stdin);
    requireCommandInVersion(env.command, conf.cniVersion);
    const outcome = await dispatch(env, conf, log);
    if (outcome.stdout !== undefined) write(outcome.stdout);
    log('info', `${env.command} ok`, { netns: env.netns, convention: env.netns ? runtimeConvention(env.netns) : undefined, rewrittenNetns: outcome.rewrittenNetns, durationMs: elapsedMs(started), outcome: 'ok' });
    return 0;
  } catch (err) {
    const e = asCniError(err);
    write(e.toJSON(cniVersion));
    log('error', `${env?.command ?? 'CNI'} failed: ${e.message}`, { netns: env?.netns, code: e.code, details: e.details, durationMs: elapsedMs(started), outcome: 'error' });
    return 1;
  }
}

function dispatch(env: CniEnv, conf: NetConf, log: Logger): Promise<Outcome> {
  switch (env.command) {
    case 'ADD':
      return cmdAdd(env, conf);
    case 'DEL':
      return cmdDel(env, conf, log);
    case 'CHECK':
      return cmdCheck(env, conf);
    case 'GC':
      return cmdGc(conf);
    case 'STATUS':
      return cmdStatus(conf);
    case 'VERSION':
      throw new Error('unreachable: VERSION is answered before the config is read');
  }
}

function elapsedMs(since: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - since) / 1e4) / 100;
}

main().then((code) => process.exit(code));

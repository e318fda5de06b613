// contivctl doctor: is this node ready for contivk8s? Each check says what is wrong and the exact fix,
// starting with the three privileges operators used to find by trial: hostPID, SYS_PTRACE, SYS_ADMIN.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { axiosClient } from '../api/axios-transport';
import type { Health } from '../api/wire';
import { parseNetConf } from '../cni/config';
import { type IpLink, ipJson } from '../linux/iproute';
import { mountinfoEntries, numericEntries, readlink } from '../netns/inventory';
import { NETNS_DIRS } from '../netns/path';
import { effectiveCaps, missingCaps, NEEDED_CAPS } from './caps';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface DoctorOptions {
  socket: string;
  binDir: string;
  confDir: string;
}

const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });

/**
 * The host PID of the process holding the listening unix socket at `socket` (found by socket inode), and
 * how many processes' fd tables were unreadable (reading another process's fds needs CAP_SYS_PTRACE).
 */
function socketOwnerPid(socket: string): { pid?: number; denied: number } {
  const line = fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[7] === socket);
  const inode = line?.trim().split(/\s+/)[6];
  let denied = 0;
  if (!inode) return { denied };
  for (const pid of numericEntries('/proc')) {
    try {
      // readdir and readlink of another process's fds each need ptrace access
      if (fs.readdirSync(`/proc/${pid}/fd`).some((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`)) return { pid: Number(pid), denied };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') denied++;
    }
  }
  return { denied };
}

const PTRACE_FIX = 'run contivctl as root with its full capability set';
const ptraceDenied = (what: string) => `cannot read ${what}: contivctl lacks CAP_SYS_PTRACE, which reading another process's namespaces and fds needs`;

function capsCheck(name: string, who: string, pid: number | 'self', fixFor: string): Check {
  const missing = missingCaps(effectiveCaps(pid));
  if (!missing.length)
    return ok(
      name,
      `${who} has ${Object.keys(NEEDED_CAPS)
        .map((c) => `CAP_${c}`)
        .join(', ')}`,
    );
  return fail(name, missing.map((c) => `${who} lacks CAP_${c}: it ${NEEDED_CAPS[c].without}`).join('; '), fixFor.replace('%s', missing.join(', ')));
}

/** Whether the netplugin sees the host's /var/run/netns mounts, now and as they come. */
function propagationCheck(pid: number): Check {
  const name = 'netns mount propagation';
  const mntNs = readlink(`/proc/${pid}/ns/mnt`);
  if (mntNs === undefined) return fail(name, ptraceDenied(`/proc/${pid}/ns/mnt`), PTRACE_FIX);
  if (mntNs === readlink('/proc/self/ns/mnt')) return ok(name, 'the netplugin shares the host mount namespace');
  const fixIt = 'mount the host /var/run/netns into the netplugin with mountPropagation: HostToContainer';
  const mounts = mountinfoEntries(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
  // the mount that holds /run/netns in the netplugin's view: the longest covering mount point
  const covering = NETNS_DIRS.flatMap((dir) => mounts.filter((m) => dir === m.mountPoint || dir.startsWith(m.mountPoint === '/' ? '/' : `${m.mountPoint}/`)));
  const holder = covering.sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  const receives = holder?.optional.some((o) => o.startsWith('master:') || o.startsWith('shared:'));
  const hostNames = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
  const unseen = hostNames.filter((n) => {
    try {
      return fs.statSync(`/proc/${pid}/root/run/netns/${n}`).ino !== fs.statSync(`/run/netns/${n}`).ino;
    } catch {
      return true;
    }
  });
  if (!receives)
    return fail(
      name,
      `the netplugin's ${holder?.mountPoint ?? '/run/netns'} is a private mount: namespaces the runtime creates later are invisible to it` +
        (unseen.length ? ` (already unseen: ${unseen.join(', ')})` : ''),
      fixIt,
    );
  if (unseen.length) return fail(name, `the netplugin does not see ${unseen.join(', ')} under /run/netns`, fixIt);
  return ok(name, `the netplugin's ${holder.mountPoint} receives host mounts (${holder.optional.join(' ')})`);
}

function confCheck(o: DoctorOptions): Check {
  const name = 'CNI config';
  const install = `contivctl install-cni --conf-dir ${o.confDir} --socket ${o.socket}`;
  const files = fs.existsSync(o.confDir)
    ? fs
        .readdirSync(o.confDir)
        .filter((f) => /\.(conf|conflist|json)$/.test(f))
        .sort()
    : [];
  if (!files.length) return fail(name, `no CNI config in ${o.confDir}`, install);
  const first = path.join(o.confDir, files[0]);
  let doc: { name?: string; cniVersion?: string; plugins?: Record<string, unknown>[]; type?: string };
  try {
    doc = JSON.parse(fs.readFileSync(first, 'utf8'));
  } catch (err) {
    return fail(name, `${first} (the runtime's choice: first in lexical order) is not JSON: ${(err as Error).message}`, install);
  }
  const plugins = doc.plugins ?? [doc];
  const ours = plugins.find((p) => p.type === 'contivk8s');
  if (!ours)
    return fail(
      name,
      `${first} is first in lexical order and does not use contivk8s (types: ${plugins.map((p) => p.type).join(', ')})`,
      `move ${first} aside, or run ${install} --conf-name 00-contiv.conflist so that ours sorts first`,
    );
  try {
    const conf = parseNetConf(JSON.stringify({ cniVersion: doc.cniVersion, name: doc.name, ...ours }));
    if (conf.socket !== o.socket)
      return fail(name, `${first} sends the plugin to ${conf.socket}, but the netplugin checked here listens on ${o.socket}`, install);
  } catch (err) {
    return fail(name, `${first}: ${(err as Error).message}`, install);
  }
  return ok(name, `${first} is first and valid`);
}

function pluginCheck(o: DoctorOptions): Check {
  const name = 'plugin binary';
  const plugin = path.join(o.binDir, 'contivk8s');
  const install = `contivctl install-cni --bin-dir ${o.binDir}`;
  try {
    fs.accessSync(plugin, fs.constants.X_OK);
  } catch (err) {
    return fail(name, `${plugin} is missing or not executable (${(err as NodeJS.ErrnoException).code})`, install);
  }
  const run = (env: Record<string, string>, conf: object = {}) =>
    spawnSync(plugin, [], {
      env: { PATH: process.env.PATH ?? '', ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}), ...env },
      input: JSON.stringify({ cniVersion: '1.1.0', name: 'doctor', ...conf }),
      encoding: 'utf8',
      timeout: 10_000,
    });
  const version = run({ CNI_COMMAND: 'VERSION' });
  let versions: string[] | undefined;
  try {
    versions = JSON.parse(version.stdout).supportedVersions;
  } catch {
    /* reported below */
  }
  if (!versions) return fail(name, `${plugin} does not answer CNI VERSION: ${(version.error?.message ?? version.stdout ?? '').split('\n')[0]}`, install);
  // a CHECK on the plugin's own mount namespace makes it load its native binding and refuse the path (code 4):
  // a binding that cannot load (a noexec $TMPDIR) answers code 5 instead, with the fix
  const probe = run(
    { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'contivctl-doctor', CNI_NETNS: '/proc/self/ns/mnt', CNI_IFNAME: 'eth0', CNI_PATH: o.binDir },
    { prevResult: {} },
  );
  let code: number | undefined;
  let error: { msg?: string; details?: string } = {};
  try {
    error = JSON.parse(probe.stdout);
    code = (error as { code?: number }).code;
  } catch {
    /* reported below */
  }
  if (code !== 4) return fail(name, `${plugin} cannot inspect a namespace: ${error.msg ?? probe.stdout}`, error.details || install);
  return ok(name, `${plugin} answers VERSION (${versions.join(', ')}) and loads its native binding`);
}

function bridgeCheck(h: Health): Check {
  const name = 'bridge and gateway';
  let info: IpLink[];
  try {
    info = ipJson(['addr', 'show', 'dev', h.bridge]);
  } catch {
    return fail(name, `bridge ${h.bridge} does not exist`, 'restart the netplugin: it creates its bridge and gateway at start');
  }
  const addrs = info[0]?.addr_info?.map((a) => a.local) ?? [];
  const want = [h.gateway, ...(h.gateway6 ? [h.gateway6] : [])];
  const missing = want.filter((g) => !addrs.includes(g));
  if (missing.length) return fail(name, `bridge ${h.bridge} lacks gateway ${missing.join(', ')}`, 'restart the netplugin: it assigns its gateways at start');
  return ok(name, `bridge ${h.bridge} has ${want.join(', ')}`);
}

function forwardingCheck(): Check {
  const name = 'net.ipv4.ip_forward';
  if (fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1') return ok(name, 'on');
  return {
    name,
    status: 'warn',
    detail: 'off: pods on this node reach each other over the bridge, but not other nodes or anything routed',
    fix: 'sysctl -w net.ipv4.ip_forward=1 (and persist it in /etc/sysctl.d)',
  };
}

export async function doctor(o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [capsCheck('contivctl capabilities', 'contivctl', 'self', 'run contivctl as root with its full capability set (missing: %s)')];
  let health: Health | undefined;
  try {
    health = await axiosClient(o.socket, 5000).health();
    checks.push(ok('netplugin socket', `${o.socket} answers /healthz (bridge ${health.bridge}, subnet ${health.subnet})`));
  } catch (err) {
    checks.push(fail('netplugin socket', (err as Error).message, `start the netplugin with --socket ${o.socket}, or point --socket at the one it uses`));
  }
  const owner = health ? socketOwnerPid(o.socket) : undefined;
  const pid = owner?.pid;
  if (owner && pid === undefined) {
    checks.push(
      owner.denied
        ? fail('netplugin process', ptraceDenied(`the fds of ${owner.denied} processes to find who holds ${o.socket}`), PTRACE_FIX)
        : fail('netplugin process', `no process in this PID namespace holds ${o.socket}`, 'run contivctl on the host, where it sees the netplugin'),
    );
  }
  if (pid !== undefined && health) {
    checks.push(capsCheck('netplugin capabilities', `netplugin (pid ${pid})`, pid, 'add to the netplugin container: securityContext.capabilities.add: [%s]'));
    const pidNs = readlink(`/proc/${pid}/ns/pid`);
    if (pidNs === undefined) checks.push(fail('host PID namespace', ptraceDenied(`/proc/${pid}/ns/pid`), PTRACE_FIX));
    else if (pidNs === readlink('/proc/self/ns/pid') && health.pid === pid)
      checks.push(ok('host PID namespace', `the netplugin shares the host PID namespace (it reports pid ${health.pid})`));
    else
      checks.push(
        fail(
          'host PID namespace',
          `the netplugin runs in its own PID namespace (it calls itself pid ${health.pid}, the host says ${pid}): ` +
            'the /proc/<adapter-pid>/ns/net it is sent names nothing it can see',
          'hostPID: true in the netplugin pod spec',
        ),
      );
    try {
      checks.push(propagationCheck(pid));
    } catch (err) {
      checks.push(fail('netns mount propagation', `cannot read the netplugin's mounts: ${(err as Error).message}`, PTRACE_FIX));
    }
    checks.push(bridgeCheck(health));
  }
  checks.push(confCheck(o), pluginCheck(o), forwardingCheck());
  if (health) checks.push(versionCheck(o, health));
  return checks;
}

/** The installed plugin and the running netplugin should be one release: report skew between them. */
function versionCheck(o: DoctorOptions, h: Health): Check {
  const name = 'plugin and netplugin versions';
  const plugin = spawnSync(path.join(o.binDir, 'contivk8s'), ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = /^contivk8s (\S+)$/m.exec(plugin.stdout ?? '')?.[1];
  if (!version)
    return {
      name,
      status: 'warn',
      detail: `the installed plugin does not say its version (${(plugin.stdout || plugin.error?.message || '').trim()})`,
      fix: `contivctl install-cni --bin-dir ${o.binDir}`,
    };
  if (!h.version) return { name, status: 'warn', detail: `the netplugin does not say its version (the plugin is ${version})` };
  if (version !== h.version)
    return {
      name,
      status: 'warn',
      detail: `skew: the installed plugin is ${version}, the running netplugin ${h.version}`,
      fix: `install the plugin of the netplugin's release (contivctl install-cni --bin-dir ${o.binDir} from that release)`,
    };
  return ok(name, `plugin and netplugin are both ${version}`);
}

// make demo: netplugin on an embedded default (private socket, state dir, bridge), two pods in the two
// namespace forms runtimes use, the adapter wiring each, a ping between them, then a full teardown that
// proves nothing was left. Stops everything it started, on failure and on Ctrl-C too.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { healthy } from '../src/api/client';

const ROOT = path.resolve(__dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contiv-demo-'));
const socket = path.join(dir, 'run', 'contiv-cni.sock');
const bridge = 'ctvdemo0';
const subnet = '10.244.0.0/24';
const cniLog = path.join(dir, 'cni.log');
const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'contiv-demo', type: 'contivk8s', socket, logFile: cniLog });
const cleanups: (() => void)[] = [];

const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
const attempt = (f: () => unknown) => {
  try {
    f();
  } catch {
    /* teardown goes on */
  }
};
const say = (s: string) => process.stdout.write(`${s}\n`);

/** Execs the plugin as a runtime does; its stdout is the CNI result or error. */
function adapter(command: string, containerId: string, netns: string): { status: number; out: any } {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${containerId}` };
  try {
    const text = execFileSync(path.join(ROOT, 'bin/contivk8s'), [], { encoding: 'utf8', input: conf, env });
    return { status: 0, out: text.trim() ? JSON.parse(text) : {} };
  } catch (err) {
    return { status: 1, out: (err as { stdout?: string }).stdout };
  }
}

async function main(): Promise<void> {
  say(`netplugin: socket ${socket}, bridge ${bridge}, subnet ${subnet}`);
  const daemon: ChildProcess = spawn(path.join(ROOT, 'bin/netplugin'), ['--socket', socket, '--state-dir', path.join(dir, 'state'), '--bridge', bridge, '--subnet', subnet, '--log-file', path.join(dir, 'netplugin.log')], { stdio: 'inherit' });
  cleanups.push(() => daemon.kill('SIGTERM'));
  for (let i = 0; !(await healthy({ socket, timeoutMs: 500 })); i++) {
    if (i > 200 || daemon.exitCode !== null) throw new Error('netplugin did not become ready');
    await new Promise((r) => setTimeout(r, 25));
  }

  const nsName = `cni-${randomUUID()}`;
  run('ip', ['netns', 'add', nsName]);
  cleanups.push(() => attempt(() => run('ip', ['netns', 'del', nsName])));
  const sleeper = spawn('unshare', ['--net', '--', 'sleep', '300'], { stdio: 'ignore' });
  cleanups.push(() => sleeper.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));

  const pods = [
    { id: 'demo-pod-a', netns: `/var/run/netns/${nsName}`, runtime: 'containerd CRI style' },
    { id: 'demo-pod-b', netns: `/proc/${sleeper.pid}/ns/net`, runtime: 'dockershim / ctr --cni style' },
  ];
  const ips: string[] = [];
  for (const pod of pods) {
    const r = adapter('ADD', pod.id, pod.netns);
    if (r.status !== 0) throw new Error(`ADD ${pod.id} failed: ${JSON.stringify(r.out)}`);
    const line = fs.readFileSync(cniLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).reverse().find((l) => l.containerId === pod.id);
    ips.push(r.out.ips[0].address.split('/')[0]);
    say(`\n${pod.id} (${pod.runtime})`);
    say(`  runtime's netns : ${pod.netns}`);
    say(`  sent to netplugin: ${line?.rewrittenNetns}   (the adapter's own /proc/<pid>/ns/net after setns)`);
    say(`  eth0            : ${r.out.ips[0].address} via ${r.out.ips[0].gateway}, mac ${r.out.interfaces[1].mac}, host veth ${r.out.interfaces[0].name}`);
  }
  say(`\nping from ${pods[0].id} to ${pods[1].id} (${ips[1]}):`);
  say(run('nsenter', [`--net=${pods[0].netns}`, '--', 'ping', '-c', '2', '-W', '2', ips[1]]).trim().split('\n').slice(-2).join('\n'));
  say('\ncontivctl endpoints:');
  say(run(path.join(ROOT, 'bin/contivctl'), ['endpoints', '--socket', socket]).trimEnd());

  for (const pod of pods) {
    const r = adapter('DEL', pod.id, pod.netns);
    if (r.status !== 0) throw new Error(`DEL ${pod.id} failed: ${JSON.stringify(r.out)}`);
  }
  const left = JSON.parse(run(path.join(ROOT, 'bin/contivctl'), ['endpoints', '--socket', socket, '--json']));
  const ports = run('ip', ['-o', 'link', 'show', 'master', bridge]).trim();
  say(`\nafter DEL: ${left.length} endpoints, ${ports ? ports.split('\n').length : 0} veths on ${bridge}`);
  if (left.length || ports) throw new Error('DEL left state behind');
}

function teardown(): void {
  for (const c of cleanups.reverse()) attempt(c);
  attempt(() => execFileSync('sh', ['-c', `sleep 0.5; ip link del ${bridge} 2>/dev/null || true`]));
  fs.rmSync(dir, { recursive: true, force: true });
}

process.on('SIGINT', () => {
  teardown();
  process.exit(130);
});
main().then(
  () => {
    teardown();
    say('demo ok: everything it started is stopped and removed');
  },
  (err: Error) => {
    teardown();
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exit(1);
  },
);

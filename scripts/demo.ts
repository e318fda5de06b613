// make demo: the netplugin on its embedded store, a private containerd whose CRI execs contivk8s, and two
// pods made through the CRI as a kubelet makes them. For each pod it shows the netns path the runtime gave,
// the /proc/<pid>/ns/net the adapter sent instead, and the IP; then a ping between the pods, and a
// teardown through the CRI that proves nothing was left. Everything it started stops, on failure and Ctrl-C.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ContainerdLab } from '../testbed/kubelet/lab';
import { adapterLog, BIN, inNetns } from '../testbed/sys';

const lab = new ContainerdLab('10.244.0.0/24');
const np = lab.np;
const say = (s = '') => process.stdout.write(`${s}\n`);
const contivctl = (args: string[]) => execFileSync(path.join(BIN, 'contivctl'), [...args, '--socket', np.socket], { encoding: 'utf8' });

async function main(): Promise<void> {
  const { cni, containerd } = await lab.start();
  say(`netplugin  pid ${np.pid}, socket ${np.socket}, bridge ${np.bridge}, subnet 10.244.0.0/24, store ${np.stateDir}`);
  const cri = containerd.cri;
  const v = await cri.version();
  say(`containerd ${v.runtimeVersion} (CRI ${v.runtimeApiVersion}) on ${containerd.socket}, CNI conf ${cni.conflist}`);

  const pods = [];
  for (const name of ['web', 'db']) {
    const id = await cri.runPodSandbox({ name, namespace: 'demo', uid: `demo-${name}` });
    const status = await cri.podSandboxStatus(id);
    const add = adapterLog(np.cniLog).find((l) => l.command === 'ADD' && l.containerId === id);
    const ep = (await np.endpoints()).find((e) => e.containerId === id);
    pods.push(status);
    say(`\npod demo/${name}  sandbox ${id.slice(0, 12)}`);
    say(`  netns from containerd   ${status.netnsPath}`);
    say(`  sent to the netplugin   ${add?.rewrittenNetns}  (the adapter's own, after setns; ADD took ${add?.durationMs} ms)`);
    say(`  pod IP (CRI status)     ${status.ip}   host veth ${ep?.hostVeth} on ${np.bridge}`);
  }
  const [a, b] = pods;
  say(`\nping from demo/web (${a.ip}) to demo/db (${b.ip}):`);
  say(
    inNetns(a.netnsPath!, 'ping', ['-c', '2', '-W', '2', b.ip])
      .trim()
      .split('\n')
      .slice(-2)
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  say('\ncontivctl endpoints:');
  say(contivctl(['endpoints']).trimEnd());

  for (const pod of pods) {
    await cri.stopPodSandbox(pod.id);
    await cri.removePodSandbox(pod.id);
  }
  const left = {
    sandboxes: (await cri.listPodSandboxIds()).length,
    endpoints: (await np.endpoints()).length,
    veths: np.bridgePorts().length,
    netns: pods.filter((p) => fs.existsSync(p.netnsPath!)).length,
  };
  say(`\nafter StopPodSandbox + RemovePodSandbox: ${left.sandboxes} sandboxes, ${left.endpoints} endpoints, ${left.veths} veths, ${left.netns} netns files`);
  if (Object.values(left).some((n) => n > 0)) throw new Error('the pods left state behind');

  // it scans the whole node: findings not of ours (not fixable) are shown but do not fail the demo
  const leaks = JSON.parse(spawnSync(path.join(BIN, 'contivctl'), ['leaks', '--socket', np.socket, '--json'], { encoding: 'utf8' }).stdout) as {
    found: { kind: string; fixable: boolean; detail: string }[];
  };
  say(`\ncontivctl leaks: ${leaks.found.length ? '' : 'no leaks'}`);
  for (const l of leaks.found) say(`  ${l.kind} ${l.fixable ? '(ours)' : '(not ours)'}: ${l.detail}`);
  if (leaks.found.some((l) => l.fixable)) throw new Error('contivctl leaks found leaks of ours');
}

// one teardown, however many of main's failure, a signal and the normal end ask for it
let tearingDown: Promise<void> | undefined;
function teardown(): Promise<void> {
  tearingDown ??= lab.destroy();
  return tearingDown;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping everything the demo started\n`);
    void teardown().finally(() => process.exit(130));
  });
}
main().then(
  async () => {
    await teardown();
    say('\ndemo ok: containerd, its shims and the netplugin are stopped; bridge, dirs and mounts removed');
  },
  async (err: Error) => {
    if (interrupted) return; // the signal handler is tearing down and will exit
    if (lab.containerd) process.stderr.write(`containerd log tail:\n${lab.containerd.logTail()}\n`);
    await teardown();
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exit(1);
  },
);

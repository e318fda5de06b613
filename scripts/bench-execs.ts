// make bench's exec loop, run by the pinned Bun (scripts/bench.ts starts it): each plugin's ADD, CHECK, DEL
// and VERSION in a fresh namespace, and the bare runtimes, interleaved round by round so the machine's noise
// falls on all alike. Bun's spawnSync reports each child's own CPU time (µs) and peak RSS, which node's
// does not. Reads the plan as JSON on stdin, writes every sample as JSON on stdout.
import { cniEnv } from '../testbed/adapter';

declare const Bun: {
  spawnSync(
    argv: string[],
    opts: { env: Record<string, string>; stdin?: Uint8Array; stdout?: 'pipe' | 'ignore'; stderr?: 'pipe' | 'ignore' },
  ): {
    exitCode: number | null;
    stdout?: Uint8Array;
    resourceUsage: { cpuTime: { total: bigint }; maxRSS: number };
  };
  stdin: { text(): Promise<string> };
};

export interface ExecPlan {
  runs: number;
  plugins: { name: string; exec: string; conf: Record<string, unknown>; env: Record<string, string> }[];
  bare: { name: string; argv: string[] }[];
  /** The env every exec gets (PATH), as a runtime gives it. */
  baseEnv: Record<string, string>;
}

export interface ExecSample {
  wallMs: number;
  cpuMs: number;
  maxRssKiB: number;
  ok: boolean;
}

export type ExecSamples = Record<string, Record<string, ExecSample[]>>;

function exec(argv: string[], env: Record<string, string>, stdin?: string): { sample: ExecSample; stdout: string } {
  const t0 = performance.now();
  const r = Bun.spawnSync(argv, { env, stdin: stdin === undefined ? undefined : new TextEncoder().encode(stdin), stdout: 'pipe', stderr: 'ignore' });
  const wallMs = performance.now() - t0;
  const sample = { wallMs, cpuMs: Number(r.resourceUsage.cpuTime.total) / 1000, maxRssKiB: Math.round(r.resourceUsage.maxRSS / 1024), ok: r.exitCode === 0 };
  return { sample, stdout: new TextDecoder().decode(r.stdout ?? new Uint8Array()) };
}

async function main(): Promise<void> {
  const plan = JSON.parse(await Bun.stdin.text()) as ExecPlan;
  const samples: ExecSamples = {};
  const record = (who: string, what: string, s: ExecSample) => {
    samples[who] ??= {};
    samples[who][what] ??= [];
    samples[who][what].push(s);
  };
  for (let i = 0; i < plan.runs; i++) {
    for (const p of plan.plugins) {
      const netns = `cni-bench-${process.pid}-${i}`;
      Bun.spawnSync(['ip', 'netns', 'add', netns], { env: plan.baseEnv });
      const env = (command: string) => ({ ...plan.baseEnv, ...cniEnv(command, `bench-${i}`, `/var/run/netns/${netns}`, p.env) });
      const conf = JSON.stringify(p.conf);
      const add = exec([p.exec], env('ADD'), conf);
      record(p.name, 'ADD', add.sample);
      let prevResult: unknown;
      try {
        prevResult = JSON.parse(add.stdout);
      } catch {
        prevResult = {};
      }
      record(p.name, 'CHECK', exec([p.exec], env('CHECK'), JSON.stringify({ ...p.conf, prevResult })).sample);
      record(p.name, 'DEL', exec([p.exec], env('DEL'), conf).sample);
      record(p.name, 'VERSION', exec([p.exec], env('VERSION'), conf).sample);
      Bun.spawnSync(['ip', 'netns', 'del', netns], { env: plan.baseEnv });
    }
    for (const b of plan.bare) record(b.name, 'exec', exec(b.argv, plan.baseEnv).sample);
  }
  process.stdout.write(JSON.stringify(samples));
}

main().catch((err: Error) => {
  process.stderr.write(`bench-execs failed: ${err.stack}\n`);
  process.exit(1);
});

// Linux capabilities of a process, from the CapEff line of /proc/<pid>/status (readable without ptrace).
import * as fs from 'node:fs';

/** The capabilities the netplugin needs, each with the failure its absence causes (from the field). */
export const NEEDED_CAPS = {
  NET_ADMIN: { bit: 12, without: 'cannot create veths, set addresses or routes' },
  SYS_PTRACE: {
    bit: 19,
    without: "cannot open another process's /proc/<pid>/ns/net (the adapter's): EACCES, seen as 'no such file or directory' by older plugins",
  },
  SYS_ADMIN: { bit: 21, without: 'cannot setns into a pod network namespace' },
} as const;
export type CapName = keyof typeof NEEDED_CAPS;

export function effectiveCaps(pid: number | 'self'): bigint {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no CapEff line`);
  return BigInt(`0x${m[1]}`);
}

export function missingCaps(caps: bigint, names: CapName[] = Object.keys(NEEDED_CAPS) as CapName[]): CapName[] {
  return names.filter((n) => (caps & (1n << BigInt(NEEDED_CAPS[n].bit))) === 0n);
}

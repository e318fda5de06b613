// iproute2's `ip` for reading a node's state where a synchronous answer is what the caller wants (contivctl
// leaks and doctor, namespace inventories, tests): one way to run it,
// inside a network namespace when given one, and one shape for its JSON (`ip -j`).
import { execFileSync } from 'node:child_process';

export interface IpAddress {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope: string;
}

/** A link as `ip -j addr show` / `ip -j -d link show` describe it (the fields this project reads). */
export interface IpLink {
  ifname: string;
  mtu: number;
  operstate: string;
  address?: string;
  master?: string;
  addr_info?: IpAddress[];
}

/** `ip <args>`, synchronously; `netns` is a namespace file, entered with nsenter. */
export function ip(args: string[], netns?: string): string {
  const [cmd, argv] = netns ? ['nsenter', [`--net=${netns}`, '--', 'ip', ...args]] : ['ip', args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip -j <args>` parsed; an empty answer is an empty list. */
export const ipJson = <T = IpLink[]>(args: string[], netns?: string): T => JSON.parse(ip(['-j', ...args], netns) || '[]') as T;

/** The links of a namespace (ours when none is given), with their addresses. */
export const links = (netns?: string): IpLink[] => ipJson(['addr', 'show'], netns);

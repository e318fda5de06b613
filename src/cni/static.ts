// Static addresses and MACs a runtime asks for, from every place the CNI conventions put them: the `ips` and
// `mac` capabilities in runtimeConfig (libcni fills them when the conflist declares them), `args.cni.ips` and
// `args.cni.mac` in the configuration, and CNI_ARGS `IP=` / `MAC=` (podman sends both, with IgnoreUnknown).
// They are honoured or refused, never ignored: sources that disagree are refused, naming each.
import { CniError, ErrorCode } from '../errors';
import { parseAddress, parseUnicastMac } from '../ip/ip';

export interface StaticSources {
  runtimeConfig?: { ips?: unknown; mac?: unknown };
  args?: { ips?: unknown; mac?: unknown };
  /** CNI_ARGS IP (comma-separated, as host-local reads it) and MAC. */
  cniArgs?: { IP?: string; MAC?: string };
}

export interface StaticRequest {
  /** As asked (an address with an optional /prefix), at most one IPv4 and one IPv6. */
  ips: string[];
  mac?: string;
}

const invalid = (msg: string, details = '') => new CniError(ErrorCode.InvalidConfig, msg, details);

function stringList(where: string, v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(`${where} must be a list of IP addresses`);
  return v as string[];
}

function oneString(where: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(`${where} must be a MAC address string`);
  return v;
}

/** One answer from all the sources that say something; refuses malformed values and sources that disagree. */
function agree<T>(what: string, found: [string, T][], same: (a: T, b: T) => boolean): T | undefined {
  const [first, ...rest] = found;
  const other = rest.find(([, v]) => !same(first[1], v));
  if (other)
    throw invalid(`static ${what} requested differently by ${first[0]} and ${other[0]}`, found.map(([w, v]) => `${w}: ${JSON.stringify(v)}`).join('; '));
  return first?.[1];
}

export function staticRequest(s: StaticSources): StaticRequest {
  const ipSources: [string, string[]][] = [];
  // each list's addresses in canonical form, sorted: what sources are compared by
  const keyOf = new Map<string[], string>();
  for (const [where, list] of [
    ['runtimeConfig.ips', stringList('runtimeConfig.ips', s.runtimeConfig?.ips)],
    ['args.cni.ips', stringList('args.cni.ips', s.args?.ips)],
    ['CNI_ARGS IP', s.cniArgs?.IP ? s.cniArgs.IP.split(',') : undefined],
  ] as const) {
    if (!list?.length) continue;
    const parsed = list.map((ip) => {
      try {
        return parseAddress(ip);
      } catch (err) {
        throw invalid(`${where}: ${(err as Error).message}`);
      }
    });
    if (parsed.filter((a) => a.family === 4).length > 1 || parsed.filter((a) => a.family === 6).length > 1)
      throw invalid(`${where} asks for more than one address of a family: ${list.join(', ')}`, 'one IPv4 and one IPv6 at most');
    ipSources.push([where, list]);
    keyOf.set(
      list,
      parsed
        .map((a) => a.address)
        .sort()
        .join(','),
    );
  }
  const ips = agree('IPs', ipSources, (a, b) => keyOf.get(a) === keyOf.get(b)) ?? [];

  const macSources: [string, string][] = [];
  for (const [where, mac] of [
    ['runtimeConfig.mac', oneString('runtimeConfig.mac', s.runtimeConfig?.mac)],
    ['args.cni.mac', oneString('args.cni.mac', s.args?.mac)],
    ['CNI_ARGS MAC', s.cniArgs?.MAC],
  ] as const) {
    if (!mac) continue;
    try {
      macSources.push([where, parseUnicastMac(mac)]);
    } catch (err) {
      throw invalid(`${where}: ${(err as Error).message}`);
    }
  }
  const mac = agree('MAC', macSources, (a, b) => a === b);
  return { ips, ...(mac ? { mac } : {}) };
}

import type { CniVersion } from './version';
import { compareVersions } from './version';

/** What an ADD wired, independent of the spec version its result is rendered in. */
export interface Wiring {
  /** The host end, when the netplugin named it (contiv's own netplugin does not). */
  hostInterface?: { name: string; mac?: string };
  podInterface: { name: string; mac?: string; sandbox: string };
  ipv4?: { address: string; gateway?: string };
  ipv6?: { address: string; gateway?: string };
  /** Whether this interface carries the pod's default routes (a second interface does not). */
  defaultRoute: boolean;
}

interface IpConfig {
  version?: '4' | '6';
  interface: number;
  address: string;
  gateway?: string;
}

/**
 * Renders the ADD result in the requested version's shape: 0.3.x/0.4.0 carry `version` on each IP,
 * 1.x drop it. The pod interface comes after the host veth when there is one, as the reference bridge
 * plugin lists them, and the IPs name it by that index.
 */
export function renderResult(cniVersion: CniVersion, a: Wiring): Record<string, unknown> {
  const legacy = compareVersions(cniVersion, '1.0.0') < 0;
  const ips: IpConfig[] = [];
  const routes: { dst: string; gw?: string }[] = [];
  const pod = a.hostInterface ? 1 : 0;
  if (a.ipv4) {
    ips.push({ ...(legacy ? { version: '4' as const } : {}), interface: pod, address: a.ipv4.address, ...(a.ipv4.gateway ? { gateway: a.ipv4.gateway } : {}) });
    if (a.ipv4.gateway && a.defaultRoute) routes.push({ dst: '0.0.0.0/0', gw: a.ipv4.gateway });
  }
  if (a.ipv6) {
    ips.push({ ...(legacy ? { version: '6' as const } : {}), interface: pod, address: a.ipv6.address, ...(a.ipv6.gateway ? { gateway: a.ipv6.gateway } : {}) });
    if (a.ipv6.gateway && a.defaultRoute) routes.push({ dst: '::/0', gw: a.ipv6.gateway });
  }
  return {
    cniVersion,
    interfaces: [
      ...(a.hostInterface ? [{ name: a.hostInterface.name, ...(a.hostInterface.mac ? { mac: a.hostInterface.mac } : {}) }] : []),
      { name: a.podInterface.name, ...(a.podInterface.mac ? { mac: a.podInterface.mac } : {}), sandbox: a.podInterface.sandbox },
    ],
    ips,
    routes,
    dns: {},
  };
}

/** Addresses (CIDR form) that a previous result assigned to the named interface (or to any, when unnamed). */
export function prevResultAddresses(prev: { interfaces?: { name: string }[]; ips?: { address: string; interface?: number }[] }, ifname: string): string[] {
  return (prev.ips ?? []).filter((ip) => ip.interface === undefined || prev.interfaces?.[ip.interface]?.name === ifname).map((ip) => ip.address);
}

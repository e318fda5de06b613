// The names an attachment is known by: Linux's rule for any interface name, the CNI spec's for a container id,
// and the name of a pod's host-side veth, which the netplugin makes and node tooling (contivctl leaks) recognizes.
import { createHash } from 'node:crypto';

/** Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no "/", ":" or whitespace. */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 bytes';
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'may not contain "/", ":" or whitespace';
  return undefined;
}

// The spec's container id: alphanumerics plus "_", "." and "-", starting with an alphanumeric.
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const isContainerId = (id: string): boolean => CONTAINER_ID.test(id);

const HOST_VETH_PREFIX = 'ctv';
// 3 + 11 = 14 bytes, under IFNAMSIZ's 15; 44 bits of hash keep collisions out of reach of a node's pods
const HASH_CHARS = 11;
const HOST_VETH_NAME = new RegExp(`^${HOST_VETH_PREFIX}[0-9a-f]{${HASH_CHARS}}$`);

/** Host end name: deterministic from (container id, ifname), <= 15 bytes, so DEL finds it with no namespace. */
export function hostVethName(containerId: string, ifname: string): string {
  return HOST_VETH_PREFIX + createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, HASH_CHARS);
}

/** Whether a link name is one hostVethName makes: how node tooling tells our veths from the rest. */
export const isHostVethName = (name: string): boolean => HOST_VETH_NAME.test(name);

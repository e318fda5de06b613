// The records the cluster store keeps in etcd (layout.ts says under which keys), as zod schemas: the source of
// truth for their types and for the checks scripts/gen-validators.ts generates (the netplugin reads records
// through those, and never loads zod).
import * as z from 'zod/mini';

export const nodeRecordSchema = z.object({
  name: z.string(),
  /** The underlay address other nodes send VXLAN to. */
  nodeIp: z.string(),
  block: z.string(),
  /** Dual stack: the node's IPv6 block. */
  block6: z.optional(z.string()),
  vtepMac: z.string(),
});
export type NodeRecord = z.infer<typeof nodeRecordSchema>;

export const blockRecordSchema = z.object({ node: z.string(), claimedAt: z.string() });
export type BlockRecord = z.infer<typeof blockRecordSchema>;

export const ipRecordSchema = z.object({
  node: z.string(),
  containerId: z.string(),
  ifname: z.string(),
  netns: z.string(),
  podName: z.string(),
  podNamespace: z.string(),
  createdAt: z.string(),
});
export type IpRecord = z.infer<typeof ipRecordSchema>;

// The contiv netplugin wire (netplugin/mgmtfn/k8splugin/cniapi): CNIPodAttr in, RspAddPod out, and our
// extensions, as zod schemas: the one contract both ends use. The daemon decodes requests with them; what the
// adapter and the client decode is checked by functions generated from them at build time
// (scripts/gen-validators.ts), so the exec'd adapter never loads zod. Names are in routes.ts.
// Unknown keys are allowed both ways, as Go's encoding/json ignores them; ours are marked below.
import * as z from 'zod/mini';

/**
 * Each schema is built on its first use: building zod schemas is most of the exec'd adapter's start-up
 * (~1 ms for this file's, measured), and an ADD decodes only one of them.
 */
function onFirstUse<T>(build: () => T): () => T {
  let schema: T | undefined;
  return () => (schema ??= build());
}

export const podAttrSchema = onFirstUse(() =>
  z.looseObject({
    K8S_POD_NAME: z.optional(z.string()),
    K8S_POD_NAMESPACE: z.optional(z.string()),
    K8S_POD_INFRA_CONTAINER_ID: z.optional(z.string()),
    CNI_NETNS: z.optional(z.string()),
    CNI_IFNAME: z.optional(z.string()),
    // extensions
    CNI_CONTAINERID: z.optional(z.string()),
    K8S_POD_UID: z.optional(z.string()),
    /** The namespace (dev, ino) the adapter verified; the netplugin checks it sees the same one. */
    CONTIV_NETNS_DEV: z.optional(z.number()),
    CONTIV_NETNS_INODE: z.optional(z.number()),
    /** The path the runtime passed, before the adapter rewrote it to /proc/<pid>/ns/net. */
    CONTIV_ORIG_NETNS: z.optional(z.string()),
    /** isDefaultGateway: whether this interface gets the pod's default routes (absent: only eth0 does). */
    CONTIV_DEFAULT_ROUTE: z.optional(z.boolean()),
    /** hairpinMode of the host veth's bridge port (absent: on). */
    CONTIV_HAIRPIN: z.optional(z.boolean()),
    /** Static addresses asked for (at most one IPv4 and one IPv6; a prefix, if given, must be the pool's). */
    CONTIV_IPS: z.optional(z.array(z.string()).check(z.maxLength(2))),
    /** A static MAC for the pod interface. */
    CONTIV_MAC: z.optional(z.string()),
  }),
);
export type PodAttr = z.infer<ReturnType<typeof podAttrSchema>>;

/** The keys every answer may carry; a failure is these (`result` = the CNI code) with HTTP 500, as contiv answers. */
const failureShape = () => ({
  // contiv marks every field omitempty, so a success may carry no `result` at all.
  result: z.optional(z.number()),
  errmsg: z.optional(z.string()),
  errinfo: z.optional(z.string()),
});
/** An attachment as the CNI spec names one in GC's list, and as GC's request and answer carry it. */
export const attachmentRefSchema = () => z.object({ containerID: z.string(), ifname: z.string() });
export type AttachmentRef = z.infer<ReturnType<typeof attachmentRefSchema>>;

/** A Linux interface name as an answer may carry it: 1-15 printable ASCII bytes, no "/", ":" or space. */
const IFNAME = /^[!-.0-9;-~]{1,15}$/;

/**
 * What contiv's RspAddPod carries on success, with our extensions. Every field is checked for what it claims
 * to be (a real CIDR, address, MAC, interface name), so an answer the adapter prints is one the runtime can use.
 */
const addPodShape = () => ({
  ...failureShape(),
  endpointid: z.optional(z.string().check(z.maxLength(1024))),
  ipaddress: z.optional(z.cidrv4()),
  // contiv's daemon leaves it empty without IPv6
  ipv6address: z.optional(z.union([z.literal(''), z.cidrv6()])),
  // extensions
  gateway: z.optional(z.ipv4()),
  ipv6gateway: z.optional(z.ipv6()),
  mac: z.optional(z.mac()),
  hostveth: z.optional(z.string().check(z.regex(IFNAME))),
  /** false when this interface got no default route (isDefaultGateway off). */
  defaultroute: z.optional(z.boolean()),
  mtu: z.optional(z.number().check(z.int(), z.gte(68), z.lte(65535))),
});

export const rspAddPodSchema = onFirstUse(() => z.looseObject(addPodShape()));
export type RspAddPod = z.infer<ReturnType<typeof rspAddPodSchema>>;

/** DelPod's answer: the attachment's id, whether or not anything was left to free. */
export const rspDelPodSchema = onFirstUse(() => z.looseObject({ ...failureShape(), endpointid: z.optional(z.string()) }));
export type RspDelPod = z.infer<ReturnType<typeof rspDelPodSchema>>;

/** CheckPod's answer (ours): the allocation, and the CIDRs found on CNI_IFNAME inside the namespace. */
export const rspCheckPodSchema = onFirstUse(() =>
  z.looseObject({ ...addPodShape(), observed: z.optional(z.array(z.string().check(z.maxLength(64))).check(z.maxLength(256))) }),
);
export type RspCheckPod = z.infer<ReturnType<typeof rspCheckPodSchema>>;

/** GC's answer (ours): the attachments that were freed. */
export const rspGcSchema = onFirstUse(() => z.looseObject({ ...failureShape(), freed: z.optional(z.array(attachmentRefSchema())) }));
export type RspGc = z.infer<ReturnType<typeof rspGcSchema>>;

/** What any failed request is answered with. */
export type RspFailure = z.infer<ReturnType<typeof z.object<ReturnType<typeof failureShape>>>>;

export const gcRequestSchema = onFirstUse(() => z.object({ validAttachments: z.array(attachmentRefSchema()) }));
export type GcRequest = z.infer<ReturnType<typeof gcRequestSchema>>;

/** One finding contivctl leaks asks the netplugin to fix, with what it saw, so the netplugin can tell if it changed. */
const fixRequestSchema = () =>
  z.union([
    z.object({ kind: z.literal('stale-allocation'), containerId: z.string(), ifname: z.string(), createdAt: z.string() }),
    z.object({ kind: z.literal('unrecorded-veth'), hostVeth: z.string(), alias: z.string() }),
  ]);
export type FixRequest = z.infer<ReturnType<typeof fixRequestSchema>>;

export const fixLeaksRequestSchema = onFirstUse(() =>
  z.object({
    /** When the scan began (ms): nothing made after it is touched. */
    scanStartedAt: z.number(),
    findings: z.array(fixRequestSchema()).check(z.maxLength(10_000)),
  }),
);
export type FixLeaksRequest = z.infer<ReturnType<typeof fixLeaksRequestSchema>>;

const fixOutcomeSchema = () =>
  z.object({
    finding: fixRequestSchema(),
    /** freed: the record of a dead attachment; adopted: a live one's record rebuilt; skipped: changed or gone since the scan. */
    action: z.enum(['freed', 'adopted', 'skipped']),
    reason: z.optional(z.string()),
  });
export type FixOutcome = z.infer<ReturnType<typeof fixOutcomeSchema>>;

export const rspFixLeaksSchema = onFirstUse(() => z.looseObject({ ...failureShape(), outcomes: z.array(fixOutcomeSchema()) }));
export type RspFixLeaks = z.infer<ReturnType<typeof rspFixLeaksSchema>>;

export const endpointSchema = onFirstUse(() =>
  z.object({
    containerId: z.string(),
    ifname: z.string(),
    ipaddress: z.string(),
    ipv6address: z.optional(z.string()),
    hostVeth: z.string(),
    mac: z.string(),
    netns: z.string(),
    podName: z.string(),
    podNamespace: z.string(),
    state: z.enum(['pending', 'ready']),
    createdAt: z.string(),
    /** 'adopted': rebuilt at start from the kernel's ownership mark after the store lost the record. */
    origin: z.optional(z.enum(['add', 'adopted'])),
  }),
);
export type Endpoint = z.infer<ReturnType<typeof endpointSchema>>;

/** A DEL the adapter queued while the netplugin was unreachable (del-queue.ts). */
export const queuedDelSchema = onFirstUse(() =>
  z.object({
    containerId: z.string().check(z.minLength(1), z.maxLength(1024)),
    ifname: z.string().check(z.minLength(1), z.maxLength(15)),
    /** The CNI_NETNS the runtime passed (for the record; the DEL needs no namespace). */
    netns: z.string().check(z.maxLength(4096)),
    podName: z.optional(z.string()),
    podNamespace: z.optional(z.string()),
    /** When the DEL was queued (ms since the epoch): it never removes an attachment made after that. */
    queuedAt: z.number().check(z.int(), z.nonnegative()),
    /** Why the netplugin could not be asked directly. */
    reason: z.string(),
  }),
);
export type QueuedDel = z.infer<ReturnType<typeof queuedDelSchema>>;

/** GET /healthz (ours): liveness plus what a node check needs to know about this daemon. */
export const healthSchema = onFirstUse(() =>
  z.object({
    status: z.literal('ok'),
    /** The netplugin's release (contivctl doctor compares it with the installed plugin's). */
    version: z.optional(z.string()),
    pid: z.number(),
    bridge: z.string(),
    subnet: z.string(),
    gateway: z.string(),
    subnet6: z.optional(z.string()),
    gateway6: z.optional(z.string()),
    mtu: z.number(),
    stateDir: z.string(),
    /** embedded (SQLite, one node) or etcd (cluster mode, `subnet` is this node's block). */
    store: z.enum(['embedded', 'etcd']),
    node: z.optional(z.string()),
    /** DELs waiting in the DEL queue beside the socket. */
    queuedDels: z.optional(z.number()),
  }),
);
export type Health = z.infer<ReturnType<typeof healthSchema>>;

// The contiv netplugin wire (netplugin/mgmtfn/k8splugin/cniapi): CNIPodAttr in, RspAddPod out.
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

/** Where the netplugin serves, and the adapter looks, unless told otherwise. */
export const DEFAULT_SOCKET = '/run/contiv/contiv-cni.sock';

/** One attachment's identity: the netplugin's lock key, the answer's `endpointid`, GC's comparison. */
export const attachmentId = (containerId: string, ifname: string): string => `${containerId}/${ifname}`;

export const Routes = {
  addPod: '/ContivCNI.AddPod',
  delPod: '/ContivCNI.DelPod',
  // Our extensions: CHECK and GC have no contiv counterpart.
  checkPod: '/ContivCNI.CheckPod',
  gc: '/ContivCNI.GC',
  healthz: '/healthz',
  endpoints: '/endpoints',
  metrics: '/metrics',
} as const;

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

/** What contiv's RspAddPod carries on success, with our extensions. */
const addPodShape = () => ({
  ...failureShape(),
  endpointid: z.optional(z.string()),
  ipaddress: z.optional(z.string()),
  ipv6address: z.optional(z.string()),
  // extensions
  gateway: z.optional(z.string()),
  ipv6gateway: z.optional(z.string()),
  mac: z.optional(z.string()),
  hostveth: z.optional(z.string()),
  /** false when this interface got no default route (the pod already had one on another interface). */
  defaultroute: z.optional(z.boolean()),
  mtu: z.optional(z.number()),
});

export const rspAddPodSchema = onFirstUse(() => z.looseObject(addPodShape()));
export type RspAddPod = z.infer<ReturnType<typeof rspAddPodSchema>>;

/** DelPod's answer: the attachment's id, whether or not anything was left to free. */
export const rspDelPodSchema = onFirstUse(() => z.looseObject({ ...failureShape(), endpointid: z.optional(z.string()) }));
export type RspDelPod = z.infer<ReturnType<typeof rspDelPodSchema>>;

/** CheckPod's answer (ours): the allocation, and the CIDRs found on CNI_IFNAME inside the namespace. */
export const rspCheckPodSchema = onFirstUse(() => z.looseObject({ ...addPodShape(), observed: z.optional(z.array(z.string())) }));
export type RspCheckPod = z.infer<ReturnType<typeof rspCheckPodSchema>>;

/** GC's answer (ours): the attachments that were freed. */
export const rspGcSchema = onFirstUse(() => z.looseObject({ ...failureShape(), freed: z.optional(z.array(attachmentRefSchema())) }));
export type RspGc = z.infer<ReturnType<typeof rspGcSchema>>;

/** What any failed request is answered with. */
export type RspFailure = z.infer<ReturnType<typeof z.object<ReturnType<typeof failureShape>>>>;

export const gcRequestSchema = onFirstUse(() => z.object({ validAttachments: z.array(attachmentRefSchema()) }));
export type GcRequest = z.infer<ReturnType<typeof gcRequestSchema>>;

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
  }),
);
export type Endpoint = z.infer<ReturnType<typeof endpointSchema>>;

/** GET /healthz (ours): liveness plus what a node check needs to know about this daemon. */
export const healthSchema = onFirstUse(() =>
  z.object({
    status: z.literal('ok'),
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
  }),
);
export type Health = z.infer<ReturnType<typeof healthSchema>>;

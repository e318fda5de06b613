// The wire's names, apart from its schemas (wire.ts) so that the exec'd adapter can use them without loading
// zod: where the netplugin serves, its routes, and how an attachment is named.

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
  /** contivctl leaks --fix: findings re-verified and fixed by the netplugin under its own locks. */
  fixLeaks: '/ContivCNI.FixLeaks',
  healthz: '/healthz',
  endpoints: '/endpoints',
  metrics: '/metrics',
} as const;

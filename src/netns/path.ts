/** How a runtime named the namespace; only the form differs, the kernel object is the same kind. */
export type NetnsForm =
  | { kind: 'proc-pid'; pid: number }
  | { kind: 'proc-task'; pid: number; tid: number }
  | { kind: 'named'; dir: '/var/run/netns' | '/run/netns'; name: string }
  | { kind: 'other' };

const PROC_PID = /^\/proc\/(\d+)\/ns\/net$/;
const PROC_TASK = /^\/proc\/(\d+)\/task\/(\d+)\/ns\/net$/;
/** Where `ip netns add` and the runtimes (containerd, CRI-O, podman) bind-mount named namespaces. */
export const NETNS_DIRS = ['/var/run/netns', '/run/netns'] as const;
const NAMED = /^(\/var\/run\/netns|\/run\/netns)\/([^/]+)$/;

/** Classifies an absolute CNI_NETNS path; returns undefined for a relative or empty one. */
export function classifyNetnsPath(path: string): NetnsForm | undefined {
  if (!path.startsWith('/')) return undefined;
  let m = PROC_PID.exec(path);
  if (m) return { kind: 'proc-pid', pid: Number(m[1]) };
  m = PROC_TASK.exec(path);
  if (m) return { kind: 'proc-task', pid: Number(m[1]), tid: Number(m[2]) };
  m = NAMED.exec(path);
  if (m && m[2] !== '.' && m[2] !== '..') return { kind: 'named', dir: m[1] as '/var/run/netns' | '/run/netns', name: m[2] };
  return { kind: 'other' };
}

/** The runtime whose convention a path follows (for logs and `contivctl`); a guess from the name only. */
export function runtimeConvention(path: string): string {
  const form = classifyNetnsPath(path);
  if (!form) return 'invalid';
  switch (form.kind) {
    case 'proc-pid':
      return 'dockershim / ctr --cni (/proc/<pid>/ns/net)';
    case 'proc-task':
      return 'per-thread (/proc/<pid>/task/<tid>/ns/net)';
    case 'named':
      if (form.name.startsWith('cni-')) return 'containerd CRI (/var/run/netns/cni-<uuid>)';
      if (form.name.startsWith('netns-')) return 'podman (/run/netns/netns-<uuid>)';
      return 'CRI-O or ip netns (/var/run/netns/<name>)';
    case 'other':
      return 'other bind-mounted nsfs file';
  }
}

/** The path the netplugin is given: this process's own namespace link, which it resolves by PID. */
export function procNetnsPath(pid: number): string {
  return `/proc/${pid}/ns/net`;
}

// A CRI client: the calls a kubelet makes to create and remove a pod's sandbox, over the runtime's gRPC
// unix socket. Only the sandbox calls: a pod's network lives and dies with its sandbox.
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = path.join(__dirname, 'cri-runtime-v1.proto');

export interface PodMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt?: number;
}

export interface SandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  /** The pod IP the runtime took from the CNI result. */
  ip: string;
  additionalIps: string[];
  /** The netns the runtime created and handed to CNI (`/var/run/netns/cni-<uuid>` for containerd). */
  netnsPath?: string;
  pid?: number;
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

/** The network namespace path from an OCI runtime spec, as containerd reports it in verbose status. */
function specNetnsPath(info: string | undefined): { netnsPath?: string; pid?: number } {
  if (!info) return {};
  const doc = JSON.parse(info) as { pid?: number; runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } };
  const ns = doc.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network');
  return { netnsPath: ns?.path, pid: doc.pid };
}

export class CriClient {
  private readonly client: grpc.Client;

  constructor(
    readonly endpoint: string,
    private readonly timeoutMs = 60_000,
  ) {
    const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as any;
    this.client = new pkg.runtime.v1.RuntimeService(`unix://${endpoint}`, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, req: object): Promise<T> {
    const fn = (this.client as unknown as Record<string, Unary>)[method].bind(this.client);
    return new Promise((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
        else resolve(res as T);
      });
    });
  }

  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call('Version', { version: 'v1' });
  }

  async runPodSandbox(pod: PodMetadata): Promise<string> {
    const config = {
      metadata: { ...pod, attempt: pod.attempt ?? 0 },
      hostname: pod.name,
      labels: { 'io.kubernetes.pod.name': pod.name, 'io.kubernetes.pod.namespace': pod.namespace },
    };
    return (await this.call<{ podSandboxId: string }>('RunPodSandbox', { config })).podSandboxId;
  }

  async podSandboxStatus(id: string): Promise<SandboxStatus> {
    const res = await this.call<{ status: any; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    const net = res.status.network ?? { ip: '', additionalIps: [] };
    return { id, state: res.status.state, ip: net.ip, additionalIps: net.additionalIps.map((p: { ip: string }) => p.ip), ...specNetnsPath(res.info?.info) };
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { podSandboxId: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { podSandboxId: id });
  }

  async listPodSandboxIds(): Promise<string[]> {
    return (await this.call<{ items: { id: string }[] }>('ListPodSandbox', {})).items.map((s) => s.id);
  }

  close(): void {
    this.client.close();
  }
}

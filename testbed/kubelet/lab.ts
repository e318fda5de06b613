// A node as a kubelet sees it: the netplugin, CNI dirs made by install-cni, and a private containerd whose
// CRI execs contivk8s, with the offline busybox image imported. Used by the e2e tests and `make demo`.
import * as path from 'node:path';
import { TestNetplugin } from '../netplugin';
import { type CniDirs, makeCniDirs } from './cni-dirs';
import { CRI_NAMESPACE, PrivateContainerd } from './containerd';
import { BUSYBOX_IMAGE, buildBusyboxImage } from './image';

export class ContainerdLab {
  readonly np: TestNetplugin;
  cni?: CniDirs;
  containerd?: PrivateContainerd;

  constructor(subnet: string) {
    this.np = new TestNetplugin({ subnet });
  }

  /** Starts everything; the image is imported into `imageNamespace` (CRI's k8s.io by default). */
  async start(imageNamespace = CRI_NAMESPACE): Promise<{ cni: CniDirs; containerd: PrivateContainerd }> {
    await this.np.start();
    const cni = makeCniDirs(this.np.dir, { socket: this.np.socket, logFile: this.np.cniLog });
    this.cni = cni;
    const containerd = new PrivateContainerd({
      dir: path.join(this.np.dir, 'containerd'),
      cniBinDir: cni.binDir,
      cniConfDir: cni.confDir,
      sandboxImage: BUSYBOX_IMAGE,
    });
    this.containerd = containerd;
    await containerd.start();
    containerd.importImage(buildBusyboxImage(this.np.dir), imageNamespace);
    return { cni, containerd };
  }

  /** containerd first (its sandboxes' DELs need the netplugin), then the netplugin. */
  async destroy(): Promise<void> {
    await this.containerd?.stop(!!process.env.CTV_KEEP_TEST_DIRS).catch((err: Error) => process.stderr.write(`stopping containerd: ${err.message}\n`));
    await this.np.destroy();
  }
}

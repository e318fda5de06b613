// `ctr run --cni`: the plugin gets /proc/<pid>/ns/net on ADD and an EMPTY CNI_NETNS on DEL (the task is
// gone by then), so DEL must free everything from the container ID alone.
import { expect } from 'chai';
import type { CniDirs } from '../../testbed/kubelet/cni-dirs';
import { ctrRunCni, type PrivateContainerd } from '../../testbed/kubelet/containerd';
import { BUSYBOX_IMAGE } from '../../testbed/kubelet/image';
import { ContainerdLab } from '../../testbed/kubelet/lab';
import { adapterLog, finished, waitFor } from '../../testbed/sys';

const CTR_NAMESPACE = 'contivk8s-e2e';

describe('e2e: ctr run --cni with contivk8s', function () {
  this.timeout(180_000);
  const lab = new ContainerdLab('10.250.1.0/24');
  const np = lab.np;
  let cni: CniDirs;
  let containerd: PrivateContainerd;

  before(async () => {
    ({ cni, containerd } = await lab.start(CTR_NAMESPACE));
  });
  after(() => lab.destroy());

  it('the container gets an IP by /proc/<pid>/ns/net; after it exits and is removed, IP and veth are gone', async () => {
    const child = ctrRunCni(containerd, cni, CTR_NAMESPACE, BUSYBOX_IMAGE, 'ctr-e2e', ['sh', '-c', 'ip -4 -o addr show eth0; sleep 2']);
    const done = finished(child);
    const ep = await waitFor('the endpoint of the running container', async () =>
      (await np.endpoints()).find((e) => e.containerId === `${CTR_NAMESPACE}-ctr-e2e`),
    );
    expect(ep.netns).to.match(/^\/proc\/\d+\/ns\/net$/);
    const r = await done;
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`inet ${ep.ipaddress}`);

    const lines = adapterLog(np.cniLog).filter((l) => l.containerId === `${CTR_NAMESPACE}-ctr-e2e`);
    expect(lines.find((l) => l.command === 'ADD')!.netns).to.match(/^\/proc\/\d+\/ns\/net$/);
    expect(lines.find((l) => l.command === 'DEL')).to.include({ netns: '', outcome: 'ok' });
    expect(await np.endpoints()).to.deep.equal([]);
    expect(np.bridgePorts()).to.deep.equal([]);
  });
});

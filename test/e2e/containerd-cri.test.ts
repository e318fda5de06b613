// containerd's CRI, driven as a kubelet drives it: the runtime makes /var/run/netns/cni-<uuid> (a bind-mounted
// nsfs file with no process in it yet), execs our plugin, and reports the IP we gave; Stop+Remove undoes it.
import * as fs from 'node:fs';
import { expect } from 'chai';
import type { PrivateContainerd } from '../../testbed/kubelet/containerd';
import { ContainerdLab } from '../../testbed/kubelet/lab';
import { adapterLog, ping } from '../../testbed/sys';

describe('e2e: containerd CRI (runtime.v1) with contivk8s', function () {
  this.timeout(180_000);
  const lab = new ContainerdLab('10.250.0.0/24');
  const np = lab.np;
  let containerd: PrivateContainerd;

  before(async () => {
    ({ containerd } = await lab.start());
  });
  after(() => lab.destroy());

  it('two pods get our IPs; status reports them; A pings B; Stop+Remove leaves no netns, veth or allocation', async () => {
    const cri = containerd.cri;
    expect((await cri.version()).runtimeApiVersion).to.equal('v1');
    const ids = [
      await cri.runPodSandbox({ name: 'pod-a', namespace: 'e2e', uid: 'uid-a' }),
      await cri.runPodSandbox({ name: 'pod-b', namespace: 'e2e', uid: 'uid-b' }),
    ];
    const [a, b] = await Promise.all(ids.map((id) => cri.podSandboxStatus(id)));

    const endpoints = await np.endpoints();
    for (const pod of [a, b]) {
      expect(pod.state).to.equal('SANDBOX_READY');
      expect(pod.netnsPath).to.match(/^\/var\/run\/netns\/cni-[0-9a-f-]{36}$/);
      expect(fs.existsSync(pod.netnsPath!)).to.equal(true);
      const ep = endpoints.find((e) => e.containerId === pod.id);
      expect(ep, `netplugin has an endpoint for ${pod.id}`).to.not.equal(undefined);
      expect(pod.ip).to.equal(ep!.ipaddress.split('/')[0]);
      // the adapter was handed containerd's path and sent the netplugin its own /proc/<pid>/ns/net
      const add = adapterLog(np.cniLog).find((l) => l.command === 'ADD' && l.containerId === pod.id);
      expect(add).to.include({ netns: pod.netnsPath, outcome: 'ok' });
      expect(add!.rewrittenNetns).to.match(/^\/proc\/\d+\/ns\/net$/);
    }
    expect(a.ip).to.not.equal(b.ip);
    expect(ping(a.netnsPath!, b.ip), `${a.ip} pings ${b.ip}`).to.equal(true);

    for (const pod of [a, b]) {
      await cri.stopPodSandbox(pod.id);
      await cri.removePodSandbox(pod.id);
      expect(fs.existsSync(pod.netnsPath!), `${pod.netnsPath} removed`).to.equal(false);
    }
    expect(await cri.listPodSandboxIds()).to.deep.equal([]);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(np.bridgePorts()).to.deep.equal([]);
  });
});

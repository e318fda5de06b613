// podman (Debian's 4.3) on its CNI backend with a conflist using contivk8s: netns /run/netns/netns-<uuid>.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { type CniDirs, makeCniDirs, NETWORK_NAME } from '../../testbed/kubelet/cni-dirs';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../../testbed/kubelet/image';
import { PrivatePodman } from '../../testbed/kubelet/podman';
import { TestNetplugin } from '../../testbed/netplugin';
import { finished, waitFor } from '../../testbed/sys';

describe('e2e: podman run --network with contivk8s', function () {
  this.timeout(180_000);
  const np = new TestNetplugin({ subnet: '10.250.2.0/24' });
  let cni: CniDirs;
  let podman: PrivatePodman;

  before(async () => {
    await np.start();
    cni = makeCniDirs(np.dir, { socket: np.socket, logFile: np.cniLog });
    podman = new PrivatePodman(path.join(np.dir, 'podman'), cni);
    podman.podman(['load', '--input', buildBusyboxImage(np.dir)]);
  });
  after(async () => {
    podman?.destroy();
    await np.destroy();
  });

  it('sees our network, and a container on it gets its IP from the netplugin; --rm frees it', async () => {
    expect(podman.podman(['network', 'ls', '--format', '{{.Name}} {{.Driver}}'])).to.include(`${NETWORK_NAME} contivk8s`);
    const done = finished(podman.run(NETWORK_NAME, BUSYBOX_IMAGE, ['sh', '-c', 'ip -4 -o addr show eth0; sleep 2']));
    const ep = await waitFor('the endpoint of the running container', async () => (await np.endpoints())[0]);
    expect(ep.netns).to.match(/^\/run\/netns\/netns-[0-9a-f-]{36}$/);
    const r = await done;
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`inet ${ep.ipaddress}`);

    await waitFor('podman to DEL the endpoint', async () => (await np.endpoints()).length === 0);
    expect(np.bridgePorts()).to.deep.equal([]);
    expect(fs.existsSync(ep.netns), `${ep.netns} removed`).to.equal(false);
  });

  it('honours --ip and --mac-address (CNI_ARGS and the ips/mac capabilities), and refuses an --ip outside the pool', async () => {
    const r = await finished(
      podman.run(
        NETWORK_NAME,
        BUSYBOX_IMAGE,
        ['sh', '-c', 'ip -o -4 addr show eth0; cat /sys/class/net/eth0/address'],
        ['--ip', '10.250.2.50', '--mac-address', '02:50:00:00:02:50'],
      ),
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('inet 10.250.2.50/24');
    expect(r.stdout).to.include('02:50:00:00:02:50');
    const refused = await finished(podman.run(NETWORK_NAME, BUSYBOX_IMAGE, ['true'], ['--ip', '10.250.99.5']));
    expect(refused.status).to.not.equal(0);
    expect(refused.stderr).to.include("requested IP 10.250.99.5: not an assignable address of this node's pool 10.250.2.0/24");
    await waitFor('every endpoint freed', async () => (await np.endpoints()).length === 0);
  });
});

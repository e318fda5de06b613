// Child-process helper for tests: runs the overlay (src/netplugin/overlay.ts) in the network namespace it
// was started in (`ip netns exec`), as a cluster-mode netplugin does: the device, the VTEP addresses, then
// `peers` peers added and the first `remove` removed. Prints {mac, warnings} as JSON.
//   node overlay-peers.js '{"vni":7,"peers":50,"remove":0}'
import { Overlay } from '../../src/netplugin/overlay';

const spec = JSON.parse(process.argv[2]) as { vni: number; peers: number; remove: number };
const warnings: string[] = [];
const log = {
  warn: (msg: string, meta: object) => warnings.push(`${msg} ${JSON.stringify(meta)}`),
  info: () => undefined,
  error: (msg: string) => warnings.push(msg),
};
const peer = (i: number) => ({
  name: `node-${i}`,
  nodeIp: `192.0.2.${i + 1}`,
  block: `10.99.${i}.0/24`,
  block6: `fd99:0:0:${i.toString(16)}::/64`,
  vtepMac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`,
});

(async () => {
  const overlay = new Overlay({ device: 'ctvvx', vni: spec.vni, port: 8472, nodeIp: '192.0.2.1' }, log as never, (err) => warnings.push(err.message));
  const mac = await overlay.ensureDevice(await overlay.underlay());
  await overlay.assignVteps(['10.99.0.0/24', 'fd99::/64']);
  for (let i = 1; i <= spec.peers; i++) await overlay.addPeer(peer(i));
  for (let i = 1; i <= spec.remove; i++) await overlay.removePeer(`node-${i}`);
  overlay.close();
  process.stdout.write(JSON.stringify({ mac, warnings }));
})().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err?.stack ?? err) }));
  process.exitCode = 1;
});

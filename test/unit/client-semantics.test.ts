// The pure pieces behind what real clients exercise and what the daemon keeps in the kernel: the ownership
// mark, static requests from every source, address and MAC parsing, the result without a host interface,
// the configuration keys, and the wire's checks on an answer.
import { expect } from 'chai';
import { rspAddPodSchema } from '../../src/api/wire';
import { parseNetConf } from '../../src/cni/config';
import { parseCniArgs } from '../../src/cni/env';
import { renderResult } from '../../src/cni/result';
import { staticRequest } from '../../src/cni/static';
import { CniError, ErrorCode } from '../../src/errors';
import { parseAddress, parseUnicastMac } from '../../src/ip/ip';
import { formatMark, linkGroups, MAX_CONTAINER_ID_BYTES, MAX_MARK_BYTES, parseMark } from '../../src/linux/mark';

const refusal = (fn: () => unknown): CniError => {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CniError);
    return err as CniError;
  }
  throw new Error('not refused');
};

describe('unit: the ownership mark', () => {
  const mark = { containerId: 'c'.repeat(64), ifname: 'eth0', ipv4: '10.1.2.3', ipv6: 'fd00::3', mac: '0a:58:0a:01:02:03', createdAtMs: 1_764_000_000_123 };

  it('round-trips, with and without IPv6', () => {
    expect(parseMark(formatMark(mark))).to.deep.equal(mark);
    const { ipv6: _, ...v4only } = mark;
    expect(parseMark(formatMark(v4only))).to.deep.equal(v4only);
  });

  it('fits the kernel alias for the longest container id it allows, and refuses longer', () => {
    const longest = { ...mark, containerId: 'x'.repeat(MAX_CONTAINER_ID_BYTES), ifname: 'a'.repeat(15), ipv6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' };
    expect(Buffer.byteLength(formatMark(longest))).to.be.at.most(MAX_MARK_BYTES);
    expect(() => formatMark({ ...longest, containerId: 'x'.repeat(200) })).to.throw(/longer than 255 bytes/);
  });

  it('is not read into anything else: an alias of another kind, a damaged mark, a forged field', () => {
    for (const alias of [
      undefined,
      '',
      'uplink to rack 3',
      'ctv1 123 10.1.2.3 - 0a:58:0a:01:02:03 eth0',
      'ctv1 123 999.1.2.3 - 0a:58:0a:01:02:03 eth0 c',
      'ctv1 12x 10.1.2.3 - 0a:58:0a:01:02:03 eth0 c',
      'ctv1 123 10.1.2.3 - zz eth0 c',
      'ctv1 123 10.1.2.3 - 0a:58:0a:01:02:03 eth/0 c',
      'ctv1 123 10.1.2.3 - 0a:58:0a:01:02:03 eth0 -c',
      'ctv2 123 10.1.2.3 - 0a:58:0a:01:02:03 eth0 c',
    ]) {
      expect(parseMark(alias), String(alias)).to.equal(undefined);
    }
  });

  it('gives each bridge its own pending and deleting groups, the same at every start, never the default group', () => {
    const a = linkGroups('contivbr0');
    expect(linkGroups('contivbr0')).to.deep.equal(a);
    expect(a.deleting).to.equal(a.pending + 1);
    expect(a.pending).to.be.above(1 << 30);
    const b = linkGroups('contivbr1');
    expect([b.pending, b.deleting]).to.not.include.members([a.pending, a.deleting]);
  });
});

describe('unit: static IP and MAC requests', () => {
  it('reads each source, and agreeing sources once', () => {
    expect(staticRequest({ runtimeConfig: { ips: ['10.1.0.5/24', 'fd00::5'], mac: '02:00:00:00:00:05' } })).to.deep.equal({
      ips: ['10.1.0.5/24', 'fd00::5'],
      mac: '02:00:00:00:00:05',
    });
    expect(staticRequest({ args: { ips: ['10.1.0.5'] } })).to.deep.equal({ ips: ['10.1.0.5'] });
    expect(staticRequest({ cniArgs: { IP: '10.1.0.5,fd00::5', MAC: '02-00-00-00-00-0A' } })).to.deep.equal({
      ips: ['10.1.0.5', 'fd00::5'],
      mac: '02:00:00:00:00:0a',
    });
    expect(staticRequest({ runtimeConfig: { ips: ['10.1.0.5/24'] }, cniArgs: { IP: '10.1.0.5' } }).ips).to.deep.equal(['10.1.0.5/24']);
    expect(staticRequest({})).to.deep.equal({ ips: [] });
  });

  it('refuses malformed values and sources that disagree, naming them (code 7)', () => {
    for (const [sources, msg] of [
      [{ runtimeConfig: { ips: '10.1.0.5' } }, /runtimeConfig\.ips must be a list/],
      [{ runtimeConfig: { ips: ['10.1.0.5', '10.1.0.6'] } }, /more than one address of a family/],
      [{ args: { ips: ['10.1.0.999'] } }, /args\.cni\.ips: "10\.1\.0\.999" is not an IP address/],
      [{ runtimeConfig: { mac: 'ff:ff:ff:ff:ff:ff' } }, /multicast/],
      [{ runtimeConfig: { ips: ['10.1.0.5'] }, cniArgs: { IP: '10.1.0.6' } }, /requested differently by runtimeConfig\.ips and CNI_ARGS IP/],
      [{ runtimeConfig: { mac: '02:00:00:00:00:01' }, args: { mac: '02:00:00:00:00:02' } }, /static MAC requested differently/],
    ] as const) {
      const err = refusal(() => staticRequest(sources as Parameters<typeof staticRequest>[0]));
      expect(err.code).to.equal(ErrorCode.InvalidConfig);
      expect(err.message).to.match(msg);
    }
  });

  it('CNI_ARGS carries IP and MAC as podman sends them', () => {
    expect(parseCniArgs('IgnoreUnknown=1;IP=10.88.0.5;MAC=02:00:00:00:00:05;K8S_POD_NAME=p')).to.deep.equal({
      IP: '10.88.0.5',
      MAC: '02:00:00:00:00:05',
      K8S_POD_NAME: 'p',
    });
  });

  it('parses addresses and MACs the way requests need', () => {
    expect(parseAddress('10.1.0.5/24')).to.deep.equal({ family: 4, address: '10.1.0.5', prefix: 24 });
    expect(parseAddress('FD00:0::5')).to.deep.equal({ family: 6, address: 'fd00::5' });
    for (const bad of ['10.1.0.5/33', '10.1.0.5/24/1', 'fd00::5/129', 'host', '10.1.0.5/x']) expect(() => parseAddress(bad), bad).to.throw();
    expect(parseUnicastMac('02:AB:cd:00:00:01')).to.equal('02:ab:cd:00:00:01');
    for (const bad of ['01:00:5e:00:00:01', '00:00:00:00:00:00', '02:00:00:00:00', 'zz:00:00:00:00:00']) expect(() => parseUnicastMac(bad), bad).to.throw();
  });
});

describe('unit: configuration and results for real clients', () => {
  it('hairpinMode defaults on; isDefaultGateway is left to the interface unless configured', () => {
    const c = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'contivk8s' }));
    expect(c.hairpin).to.equal(true);
    expect(c.isDefaultGateway).to.equal(undefined);
    const off = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'contivk8s', hairpinMode: false, isDefaultGateway: true }));
    expect([off.hairpin, off.isDefaultGateway]).to.deep.equal([false, true]);
    const bad = refusal(() => parseNetConf(JSON.stringify({ cniVersion: '1.0.0', hairpinMode: 'yes' })));
    expect(bad.code).to.equal(ErrorCode.InvalidConfig);
  });

  it('renders the pod interface alone, at index 0, when the netplugin names no host veth', () => {
    const r = renderResult('1.0.0', {
      podInterface: { name: 'eth0', mac: '0a:58:0a:01:02:03', sandbox: '/var/run/netns/x' },
      ipv4: { address: '10.1.2.3/24', gateway: '10.1.2.1' },
      defaultRoute: true,
    });
    expect(r.interfaces).to.deep.equal([{ name: 'eth0', mac: '0a:58:0a:01:02:03', sandbox: '/var/run/netns/x' }]);
    expect(r.ips).to.deep.equal([{ interface: 0, address: '10.1.2.3/24', gateway: '10.1.2.1' }]);
  });

  it("the wire checks an answer's fields for what they claim to be", () => {
    const ok = {
      result: 0,
      ipaddress: '10.1.2.3/24',
      ipv6address: 'fd00::3/64',
      gateway: '10.1.2.1',
      ipv6gateway: 'fd00::1',
      mac: '0a:58:0a:01:02:03',
      hostveth: 'ctv0123456789a',
    };
    expect(rspAddPodSchema().safeParse(ok).success).to.equal(true);
    expect(rspAddPodSchema().safeParse({ ...ok, ipv6address: '' }).success, "contiv's empty IPv6").to.equal(true);
    for (const bad of [
      { ipaddress: '999.1.1.1/99' },
      { ipaddress: '10.1.2.3' },
      { ipv6address: 'fd00::3' },
      { gateway: 'not-an-ip' },
      { mac: 'zz' },
      { hostveth: 'x'.repeat(16) },
      { hostveth: 'a b' },
      { mtu: 10 },
    ]) {
      expect(rspAddPodSchema().safeParse({ ...ok, ...bad }).success, JSON.stringify(bad)).to.equal(false);
    }
  });
});

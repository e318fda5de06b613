import * as net from 'node:net';
import { expect } from 'chai';
import { bigIntToIpv6, intToIpv4, ipv4Bytes, ipv4ToInt, ipv6Bytes, ipv6ToBigInt, isIPv4, isIPv6, macForIpv4, parseCidr4, parseCidr6 } from '../../src/ip/ip';
import { hostVethName } from '../../src/linux/ifname';
import { KeyedMutex } from '../../src/netplugin/concurrency';
import { Pool4, Pool6 } from '../../src/netplugin/ipam';

describe('unit: addresses and IPAM', () => {
  it('converts IPv4 both ways and parses CIDRs to the network', () => {
    expect(intToIpv4(ipv4ToInt('10.244.3.7'))).to.equal('10.244.3.7');
    const c = parseCidr4('10.244.3.7/16');
    expect([intToIpv4(c.network), intToIpv4(c.broadcast), c.prefix]).to.deep.equal(['10.244.0.0', '10.244.255.255', 16]);
    expect(() => parseCidr4('10.0.0.0')).to.throw(/CIDR/);
    expect(() => parseCidr4('10.0.0.0/31')).to.throw(/prefix/);
    expect(() => parseCidr4('300.0.0.0/16')).to.throw(/IPv4/);
  });
  it('formats IPv6 in RFC 5952 form', () => {
    for (const [input, out] of [
      ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ])
      expect(bigIntToIpv6(ipv6ToBigInt(input))).to.equal(out);
    expect(bigIntToIpv6(parseCidr6('fd00:1::77/64').network)).to.equal('fd00:1::');
  });
  it('encodes addresses in network byte order for rtnetlink', () => {
    expect([...ipv4Bytes(ipv4ToInt('192.0.2.9'))]).to.deep.equal([192, 0, 2, 9]);
    expect(ipv6Bytes(ipv6ToBigInt('fd00::9')).toString('hex')).to.equal('fd000000000000000000000000000009');
  });
  it('derives the MAC from the IPv4 address (0a:58:<ip>)', () => {
    expect(macForIpv4(ipv4ToInt('10.244.0.5'))).to.equal('0a:58:0a:f4:00:05');
  });
  it('host veth names are deterministic, distinct and <= 15 bytes', () => {
    const a = hostVethName('abc', 'eth0');
    expect(a).to.equal(hostVethName('abc', 'eth0'));
    expect(a).to.not.equal(hostVethName('abc', 'net1'));
    expect(a.length).to.be.at.most(15);
    expect(a).to.match(/^ctv[0-9a-f]{11}$/);
  });

  describe('Pool4', () => {
    it('never hands out the network, the gateway or the broadcast address', () => {
      const pool = new Pool4('10.1.0.0/29');
      const got: string[] = [];
      for (let ip = pool.next(); ip !== undefined; ip = pool.next()) {
        pool.markUsed(ip);
        got.push(intToIpv4(ip));
      }
      expect(got).to.deep.equal(['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
      expect(pool.next()).to.equal(undefined);
    });
    it('honours an explicit gateway', () => {
      const pool = new Pool4('10.1.0.0/29', '10.1.0.6');
      const got: number[] = [];
      for (let ip = pool.next(); ip !== undefined; ip = pool.next()) {
        pool.markUsed(ip);
        got.push(ip & 7);
      }
      expect(got).to.deep.equal([1, 2, 3, 4, 5]);
      expect(() => new Pool4('10.1.0.0/29', '10.1.0.7')).to.throw(/gateway/);
    });
    it('is next-fit: a released address is not reused before the cursor wraps', () => {
      const pool = new Pool4('10.1.0.0/24');
      const a = pool.next()!;
      pool.markUsed(a);
      const b = pool.next()!;
      pool.markUsed(b);
      pool.markFree(a);
      expect(pool.next()).to.equal(b + 1);
    });
    it('resumes after a persisted cursor', () => {
      const pool = new Pool4('10.1.0.0/24');
      pool.resumeAfter(ipv4ToInt('10.1.0.100'));
      expect(intToIpv4(pool.next()!)).to.equal('10.1.0.101');
    });
    it('finds the one free address in a nearly full /16', () => {
      const pool = new Pool4('10.2.0.0/16');
      for (let ip = pool.next(); ip !== undefined; ip = pool.next()) pool.markUsed(ip);
      pool.markFree(ipv4ToInt('10.2.77.77'));
      expect(intToIpv4(pool.next()!)).to.equal('10.2.77.77');
    });
  });

  describe('Pool6', () => {
    it('skips the network and gateway and formats canonically', () => {
      const pool = new Pool6('fd00:5::/64');
      const a = pool.next()!;
      pool.markUsed(a);
      expect(a).to.equal('fd00:5::2');
      expect(pool.next()).to.equal('fd00:5::3');
    });
    it('treats differently written equal addresses as one', () => {
      const pool = new Pool6('fd00:5::/64');
      pool.markUsed('fd00:5:0:0::2');
      expect(pool.next()).to.equal('fd00:5::3');
    });
  });

  it('KeyedMutex serializes one key and not others', async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    const slow = (tag: string, ms: number) => async () => {
      order.push(`${tag}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${tag}-`);
    };
    await Promise.all([m.run('a', slow('a1', 30)), m.run('a', slow('a2', 1)), m.run('b', slow('b1', 1))]);
    expect(order.indexOf('a2+')).to.be.greaterThan(order.indexOf('a1-'));
    expect(order.indexOf('b1+')).to.be.lessThan(order.indexOf('a1-'));
  });
  it('KeyedMutex goes on after a failure', async () => {
    const m = new KeyedMutex();
    await m
      .run('k', async () => {
        throw new Error('x');
      })
      .catch(() => undefined);
    expect(await m.run('k', async () => 7)).to.equal(7);
  });
});

describe('unit: IP address text', () => {
  it("isIPv4 and isIPv6 agree with node:net's on valid, invalid and tricky forms", () => {
    const corpus = [
      '0.0.0.0',
      '255.255.255.255',
      '10.1.2.3',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1.2.3.-4',
      ' 1.2.3.4',
      '::',
      '::1',
      '1::',
      'fd00::5',
      'FD00:0:0:0:0:0:0:5',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::',
      '1::2::3',
      ':1',
      '1:',
      '::ffff:1.2.3.4',
      '::ffff:1.2.3.256',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5:6:7:1.2.3.4',
      'g::1',
      '12345::1',
      '',
      'localhost',
    ];
    for (const s of corpus) {
      expect(isIPv4(s), s).to.equal(net.isIPv4(s));
      expect(isIPv6(s), s).to.equal(net.isIPv6(s));
    }
  });
});

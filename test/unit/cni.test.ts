import { expect } from 'chai';
import { parseNetConf, peekConfig } from '../../src/cni/config';
import { parseCniArgs, parseEnv } from '../../src/cni/env';
import { MAX_TIMEOUT_MS } from '../../src/cni/limits';
import { prevResultAddresses, renderResult } from '../../src/cni/result';
import { compareVersions, requireCommandInVersion, SUPPORTED_VERSIONS } from '../../src/cni/version';
import { CniError, ErrorCode } from '../../src/errors';
import { interfaceNameProblem } from '../../src/linux/ifname';
import { runtimeFixtures } from '../support/fixtures';

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CniError);
    return (err as CniError).code;
  }
  return undefined;
}

describe('unit: CNI protocol', () => {
  describe('runtime fixtures', () => {
    for (const fx of runtimeFixtures()) {
      it(`${fx.runtime}: ADD env and stdin parse`, () => {
        const env = parseEnv(fx.add.env);
        expect(env.command).to.equal('ADD');
        expect(env.netns).to.equal(fx.add.env.CNI_NETNS);
        const conf = parseNetConf(JSON.stringify(fx.add.stdin));
        expect(SUPPORTED_VERSIONS).to.include(conf.cniVersion);
        expect(conf.socket).to.equal('/run/contiv/contiv-cni.sock');
      });
      it(`${fx.runtime}: DEL parses with its netns convention (${fx.del.env.CNI_NETNS === '' ? 'empty' : 'kept'})`, () => {
        const env = parseEnv({ ...fx.add.env, ...fx.del.env });
        expect(env.command).to.equal('DEL');
        expect(env.containerId).to.equal(fx.add.env.CNI_CONTAINERID);
      });
    }
  });

  describe('CNI_ARGS', () => {
    it('reads the kubelet keys', () => {
      expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u')).to.deep.equal({
        K8S_POD_NAMESPACE: 'ns',
        K8S_POD_NAME: 'p',
        K8S_POD_INFRA_CONTAINER_ID: 'abc',
        K8S_POD_UID: 'u',
      });
    });
    it('accepts empty and absent CNI_ARGS', () => {
      expect(parseCniArgs('')).to.deep.equal({});
      expect(parseCniArgs(undefined)).to.deep.equal({});
    });
    it('refuses unknown keys unless IgnoreUnknown is set', () => {
      expect(codeOf(() => parseCniArgs('FOO=bar'))).to.equal(ErrorCode.InvalidEnv);
      expect(parseCniArgs('IgnoreUnknown=true;FOO=bar')).to.deep.equal({});
    });
    it('refuses a pair without "="', () => {
      expect(codeOf(() => parseCniArgs('IgnoreUnknown=1;garbage'))).to.equal(ErrorCode.InvalidEnv);
    });
    it('keeps "=" inside values', () => {
      expect(parseCniArgs('K8S_POD_NAME=a=b').K8S_POD_NAME).to.equal('a=b');
    });
  });

  describe('environment', () => {
    const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
    it('VERSION needs nothing else (libcni sends "dummy")', () => {
      expect(parseEnv({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' }).command).to.equal('VERSION');
    });
    it('an unknown command is code 4', () => {
      expect(codeOf(() => parseEnv({ ...base, CNI_COMMAND: 'FROB' }))).to.equal(ErrorCode.InvalidEnv);
    });
    for (const v of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'] as const) {
      it(`ADD without ${v} is code 4`, () => {
        const env: Record<string, string> = { ...base };
        delete env[v];
        expect(codeOf(() => parseEnv(env))).to.equal(ErrorCode.InvalidEnv);
      });
    }
    it('DEL may have an empty CNI_NETNS', () => {
      expect(parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).to.equal('');
    });
    it('refuses a container id with a slash', () => {
      expect(codeOf(() => parseEnv({ ...base, CNI_CONTAINERID: '../etc' }))).to.equal(ErrorCode.InvalidEnv);
    });
    for (const bad of ['averyveryverylongname', 'a/b', 'eth 0', 'a:b', '.', '..']) {
      it(`refuses CNI_IFNAME ${JSON.stringify(bad)}`, () => {
        expect(interfaceNameProblem(bad)).to.be.a('string');
        expect(codeOf(() => parseEnv({ ...base, CNI_IFNAME: bad }))).to.equal(ErrorCode.InvalidEnv);
      });
    }
    it('accepts a 15-byte interface name', () => {
      expect(interfaceNameProblem('a'.repeat(15))).to.equal(undefined);
    });
  });

  describe('network config', () => {
    it('malformed JSON is code 6', () => {
      expect(codeOf(() => parseNetConf('{"cniVersion":'))).to.equal(ErrorCode.Decode);
    });
    it('an unsupported cniVersion is code 1', () => {
      expect(codeOf(() => parseNetConf('{"cniVersion":"9.9.9","name":"n"}'))).to.equal(ErrorCode.IncompatibleVersion);
      expect(codeOf(() => parseNetConf('{"cniVersion":"0.2.0","name":"n"}'))).to.equal(ErrorCode.IncompatibleVersion);
    });
    it('a wrongly typed key is code 7', () => {
      expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","timeoutMs":"soon"}'))).to.equal(ErrorCode.InvalidConfig);
      expect(codeOf(() => parseNetConf('{"name":"x"}'))).to.equal(ErrorCode.InvalidConfig);
    });
    it('refuses an abstract or relative socket (it would be looked up inside the pod netns)', () => {
      expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","socket":"@contiv"}'))).to.equal(ErrorCode.InvalidConfig);
      expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","socket":"run/x.sock"}'))).to.equal(ErrorCode.InvalidConfig);
    });
    it('reads both GC attachment keys', () => {
      const a = [{ containerID: 'c', ifname: 'eth0' }];
      expect(parseNetConf(JSON.stringify({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': a })).validAttachments).to.deep.equal(a);
      expect(parseNetConf(JSON.stringify({ cniVersion: '1.1.0', 'cni.dev/attachments': a })).validAttachments).to.deep.equal(a);
    });
    it("GC: libcni's null (no valid attachment on the node) is the empty list; an absent list stays absent", () => {
      expect(
        parseNetConf(JSON.stringify({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': null, 'cni.dev/attachments': null })).validAttachments,
      ).to.deep.equal([]);
      expect(parseNetConf(JSON.stringify({ cniVersion: '1.1.0', 'cni.dev/attachments': null })).validAttachments).to.deep.equal([]);
      expect(parseNetConf(JSON.stringify({ cniVersion: '1.1.0' })).validAttachments).to.equal(undefined);
    });
    it('bounds timeoutMs (a timer overflows past 2^31 ms) and wants an absolute logFile', () => {
      expect(parseNetConf(JSON.stringify({ cniVersion: '1.1.0', timeoutMs: MAX_TIMEOUT_MS })).timeoutMs).to.equal(MAX_TIMEOUT_MS);
      expect(codeOf(() => parseNetConf(JSON.stringify({ cniVersion: '1.1.0', timeoutMs: 2 ** 31 })))).to.equal(ErrorCode.InvalidConfig);
      expect(codeOf(() => parseNetConf(JSON.stringify({ cniVersion: '1.1.0', logFile: 'relative.log' })))).to.equal(ErrorCode.InvalidConfig);
    });
    it('answers errors in the requested version when it is supported, else the latest; finds the log file of an unusable config', () => {
      expect(peekConfig('{"cniVersion":"0.4.0"}').replyVersion).to.equal('0.4.0');
      expect(peekConfig('{"cniVersion":"9.9.9"}').replyVersion).to.equal('1.1.0');
      expect(peekConfig('not json')).to.deep.equal({ replyVersion: '1.1.0' });
      expect(peekConfig('{"cniVersion":5,"logFile":"/var/log/x.log","socket":7}')).to.deep.equal({ replyVersion: '1.1.0', logFile: '/var/log/x.log' });
      expect(peekConfig('{"logFile":"relative"}')).to.deep.equal({ replyVersion: '1.1.0' });
      expect(peekConfig('null')).to.deep.equal({ replyVersion: '1.1.0' });
    });
  });

  describe('versions', () => {
    it('compares numerically', () => {
      expect(compareVersions('0.10.0', '0.4.0')).to.be.greaterThan(0);
      expect(compareVersions('1.0.0', '1.0.0')).to.equal(0);
    });
    it('CHECK needs >= 0.4.0, GC and STATUS >= 1.1.0', () => {
      expect(codeOf(() => requireCommandInVersion('CHECK', '0.3.1'))).to.equal(ErrorCode.IncompatibleVersion);
      expect(codeOf(() => requireCommandInVersion('CHECK', '0.4.0'))).to.equal(undefined);
      expect(codeOf(() => requireCommandInVersion('GC', '1.0.0'))).to.equal(ErrorCode.IncompatibleVersion);
      expect(codeOf(() => requireCommandInVersion('STATUS', '1.1.0'))).to.equal(undefined);
    });
  });

  describe('result shapes', () => {
    const attachment = {
      hostInterface: { name: 'ctv0123456789a' },
      podInterface: { name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/var/run/netns/cni-1' },
      ipv4: { address: '10.244.0.5/16', gateway: '10.244.0.1' },
      ipv6: { address: 'fd00::5/64', gateway: 'fd00::1' },
      defaultRoute: true,
    };
    for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
      it(`${v} carries "version" on each IP`, () => {
        const r = renderResult(v, attachment) as any;
        expect(r.cniVersion).to.equal(v);
        expect(r.ips.map((i: any) => i.version)).to.deep.equal(['4', '6']);
      });
    }
    for (const v of ['1.0.0', '1.1.0'] as const) {
      it(`${v} drops "version"; eth0 has the runtime's sandbox path and the default routes`, () => {
        const r = renderResult(v, attachment) as any;
        expect(r.ips[0]).to.deep.equal({ interface: 1, address: '10.244.0.5/16', gateway: '10.244.0.1' });
        expect(r.interfaces[1]).to.deep.equal({ name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/var/run/netns/cni-1' });
        expect(r.routes).to.deep.equal([
          { dst: '0.0.0.0/0', gw: '10.244.0.1' },
          { dst: '::/0', gw: 'fd00::1' },
        ]);
      });
    }
    it('a second interface keeps its gateway on the IP but gets no default routes', () => {
      const r = renderResult('1.0.0', { ...attachment, podInterface: { ...attachment.podInterface, name: 'eth1' }, defaultRoute: false }) as any;
      expect(r.ips[0].gateway).to.equal('10.244.0.1');
      expect(r.routes).to.deep.equal([]);
    });
    it('prevResult addresses are those of the named interface', () => {
      const prev = {
        interfaces: [{ name: 'host' }, { name: 'eth0' }, { name: 'net1' }],
        ips: [
          { interface: 1, address: 'a' },
          { interface: 2, address: 'b' },
        ],
      };
      expect(prevResultAddresses(prev, 'eth0')).to.deep.equal(['a']);
    });
  });
});

import { expect } from 'chai';
import { classifyNetnsPath, procNetnsPath, runtimeConvention } from '../../src/netns/path';
import { runtimeFixtures } from '../support/fixtures';

describe('unit: netns path conventions', () => {
  for (const fx of runtimeFixtures()) {
    it(`${fx.runtime}: ${fx.add.env.CNI_NETNS} is ${fx.netnsKind}, "${fx.convention}"`, () => {
      expect(classifyNetnsPath(fx.add.env.CNI_NETNS)?.kind).to.equal(fx.netnsKind);
      expect(runtimeConvention(fx.add.env.CNI_NETNS)).to.equal(fx.convention);
    });
  }
  it('reads the PID of /proc/<pid>/ns/net and of a per-task path', () => {
    expect(classifyNetnsPath('/proc/42/ns/net')).to.deep.equal({ kind: 'proc-pid', pid: 42 });
    expect(classifyNetnsPath('/proc/42/task/43/ns/net')).to.deep.equal({ kind: 'proc-task', pid: 42, tid: 43 });
  });
  it('names both netns directories', () => {
    expect(classifyNetnsPath('/run/netns/netns-1')).to.deep.equal({ kind: 'named', dir: '/run/netns', name: 'netns-1' });
    expect(classifyNetnsPath('/var/run/netns/x')).to.deep.equal({ kind: 'named', dir: '/var/run/netns', name: 'x' });
  });
  it('treats other absolute paths as "other" and relative or empty ones as invalid', () => {
    expect(classifyNetnsPath('/tmp/ns')?.kind).to.equal('other');
    expect(classifyNetnsPath('/proc/self/ns/net')?.kind).to.equal('other');
    expect(classifyNetnsPath('/var/run/netns/..')?.kind).to.equal('other');
    expect(classifyNetnsPath('proc/1/ns/net')).to.equal(undefined);
    expect(classifyNetnsPath('')).to.equal(undefined);
  });
  it('rewrites to /proc/<pid>/ns/net', () => {
    expect(procNetnsPath(1234)).to.equal('/proc/1234/ns/net');
  });
});

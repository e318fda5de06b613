import { expect } from 'chai';
import { blocksOf, chooseBlock } from '../../src/netplugin/cluster/blocks';

describe('unit: cluster blocks', () => {
  const blocks = blocksOf('10.200.0.0/22', 24);

  it('splits the cluster CIDR into blocks in address order and refuses impossible prefixes', () => {
    expect(blocks).to.deep.equal(['10.200.0.0/24', '10.200.1.0/24', '10.200.2.0/24', '10.200.3.0/24']);
    expect(() => blocksOf('10.200.0.0/16', 12)).to.throw(/between/);
    expect(() => blocksOf('10.200.0.0/16', 30)).to.throw(/between/);
  });

  it('cuts an IPv6 cluster CIDR the same way (the host bits of the CIDR do not matter), and refuses too many blocks', () => {
    expect(blocksOf('fd00:200::5/62', 64)).to.deep.equal(['fd00:200::/64', 'fd00:200:0:1::/64', 'fd00:200:0:2::/64', 'fd00:200:0:3::/64']);
    expect(blocksOf('fd00:200::/56', 64)).to.have.length(256);
    expect(() => blocksOf('fd00::/32', 64)).to.throw(/more than 65536/);
    expect(() => blocksOf('fd00:200::/56', 48)).to.throw(/between/);
  });

  it('keeps the block a node already owns (a restart keeps its pods)', () => {
    const owners = new Map([
      ['10.200.0.0/24', 'a'],
      ['10.200.1.0/24', 'b'],
    ]);
    expect(chooseBlock('b', blocks, owners, new Set(['a']), new Set())).to.deep.equal({ block: '10.200.1.0/24', how: 'kept' });
  });

  it("reuses a dead node's empty block before spreading into a never-claimed one", () => {
    const owners = new Map([
      ['10.200.0.0/24', 'live'],
      ['10.200.1.0/24', 'dead'],
    ]);
    expect(chooseBlock('c', blocks, owners, new Set(['live']), new Set())).to.deep.equal({ block: '10.200.1.0/24', how: 'taken-over', from: 'dead' });
    expect(chooseBlock('c', blocks, owners, new Set(['live']), new Set(['10.200.1.0/24']))).to.deep.equal({ block: '10.200.2.0/24', how: 'new' });
  });

  it("takes over a dead node's block only when no IP of it remains; never a live node's", () => {
    const owners = new Map(blocks.map((b, i) => [b, ['live', 'dead-with-pods', 'dead-empty', 'live2'][i]]));
    const live = new Set(['live', 'live2']);
    expect(chooseBlock('new', blocks, owners, live, new Set(['10.200.1.0/24']))).to.deep.equal({
      block: '10.200.2.0/24',
      how: 'taken-over',
      from: 'dead-empty',
    });
    expect(chooseBlock('new', blocks, owners, live, new Set(['10.200.1.0/24', '10.200.2.0/24']))).to.equal(undefined);
  });
});

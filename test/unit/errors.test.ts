import { expect } from 'chai';
import { asCniError, CniError, CodedFailure, causes, ErrorCode, isUnexpected } from '../../src/errors';
import { KernelError } from '../../src/linux/rtnetlink';

describe('unit: errors keep their cause, and a bug looks like a bug', () => {
  it('a coded failure becomes the answer with its code and hint, the failure kept as the cause', () => {
    const kernel = new KernelError('create veth ctv0', 'EPERM', new Error('Request rejected: EPERM'));
    const failure = new CodedFailure(ErrorCode.Io, 'create veth ctv0: operation not permitted', 'netplugin needs CAP_NET_ADMIN', { cause: kernel });
    const answer = asCniError(failure);
    expect([answer.code, answer.message, answer.details]).to.deep.equal([ErrorCode.Io, failure.message, 'netplugin needs CAP_NET_ADMIN']);
    expect(answer.cause).to.equal(failure);
    expect(causes(answer)).to.equal('create veth ctv0: operation not permitted <- create veth ctv0: EPERM <- Request rejected: EPERM');
    expect(isUnexpected(failure)).to.equal(false);
  });

  it('anything else is answered as an I/O error but reported as unexpected, its stack kept', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'index')");
    const answer = asCniError(bug);
    expect([answer.code, answer.message]).to.deep.equal([ErrorCode.Io, bug.message]);
    expect(answer.cause).to.equal(bug);
    expect(isUnexpected(bug)).to.equal(true);
    expect(isUnexpected(new CniError(ErrorCode.InvalidConfig, 'refused'))).to.equal(false);
    expect(causes(bug)).to.equal('');
  });
});

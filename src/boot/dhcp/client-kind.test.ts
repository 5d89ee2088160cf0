// What clientKind reads from a request's options: iPXE in both option-77 encodings, and the
// architecture of a multi-arch or truncated option 93. How the answer uses it is policy.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageType, Opt, decodeDhcpPacket, encodeDhcpPacket } from '../../protocols/dhcp/packet.ts';
import { clientKind } from './client-kind.ts';

/** A DISCOVER with these options, as it arrives: encoded, then decoded. */
const discover = (options: Record<number, number[]>) =>
  decodeDhcpPacket(
    encodeDhcpPacket({
      op: 1,
      xid: 0xc0ffee,
      chaddr: '02:cd:81:00:00:42',
      options: new Map([
        [Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
        ...Object.entries(options).map(([code, bytes]): [number, Buffer] => [Number(code), Buffer.from(bytes)]),
      ]),
    }),
  );

describe('clientKind', () => {
  it('clientKind reads iPXE in both option-77 encodings and a multi-arch option 93', () => {
    assert.equal(clientKind(discover({ 77: [4, ...Buffer.from('iPXE')] })).ipxe, true);
    assert.equal(clientKind(discover({ 93: [0, 7, 0, 0] })).firmware, 'uefi64');
    assert.equal(clientKind(discover({ 93: [7] })).arch, undefined);
  });
});

import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { frameMessage, MessageReader, parseGrpcTimeout } from '../../src/grpc/grpc-framing.js';

const framed = (bytes: number[], compressed = false) => {
  const f = frameMessage(Uint8Array.from(bytes));
  if (compressed) f[0] = 1;
  return f;
};

describe('gRPC message framing', () => {
  it('frames a message with a zero flag and a big-endian length', () => {
    expect([...frameMessage(Uint8Array.from([7, 8, 9]))]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
  });

  it('reads one message from one chunk, and messages split across chunks', () => {
    const reader = new MessageReader();
    expect(reader.push(framed([1, 2, 3]))).toEqual({ ok: true, value: [Buffer.from([1, 2, 3])] });
    const two = Buffer.concat([framed([4]), framed([5, 6])]);
    expect(reader.push(two.subarray(0, 2))).toEqual({ ok: true, value: [] });
    expect(reader.hasPartialMessage).toBe(true);
    expect(reader.push(two.subarray(2, 7))).toEqual({ ok: true, value: [Buffer.from([4])] });
    expect(reader.push(two.subarray(7))).toEqual({ ok: true, value: [Buffer.from([5, 6])] });
    expect(reader.hasPartialMessage).toBe(false);
  });

  it('reads an empty message', () => {
    expect(new MessageReader().push(framed([]))).toEqual({ ok: true, value: [Buffer.alloc(0)] });
  });

  it('refuses a compressed message (no encoding is negotiated) with INTERNAL', () => {
    const read = new MessageReader().push(framed([1], true));
    expect(read).toMatchObject({ ok: false, error: { code: status.INTERNAL } });
  });

  it('refuses a message over the size limit as soon as its length is known, with RESOURCE_EXHAUSTED', () => {
    const prefix = Buffer.from([0, 0, 0, 0x10, 0x01]); // 4097 bytes announced, none sent yet
    const read = new MessageReader(4096).push(prefix);
    expect(read).toMatchObject({ ok: false, error: { code: status.RESOURCE_EXHAUSTED } });
    expect(read.ok ? '' : read.error.message).toContain('4097 vs. 4096');
  });
});

describe('grpc-timeout', () => {
  it('is undefined when absent', () => {
    expect(parseGrpcTimeout(undefined)).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['200m', 200],
    ['3S', 3000],
    ['2M', 120_000],
    ['1H', 3_600_000],
    ['1500u', 2],
    ['10n', 1],
  ])('reads %s as %d ms', (header, ms) => {
    expect(parseGrpcTimeout(header)).toEqual({ ok: true, value: ms });
  });

  it.each(['', '5', 'm', '123456789m', '1.5S', '-1S', '10s'])('refuses %j', (header) => {
    expect(parseGrpcTimeout(header)).toMatchObject({ ok: false, error: { code: status.INTERNAL } });
  });
});

import { describe, expect, it } from 'vitest';
import { redactString, redactValue } from '../../src/telemetry/redact.js';

describe('redactString', () => {
  it.each([
    ['Bearer abc.def', 'Bearer [redacted]'],
    ['/x?token=abc&page=1', '/x?token=[redacted]&page=1'],
    ['/x?page=1&API_KEY=abc', '/x?page=1&API_KEY=[redacted]'],
    ['t=eyJhbGciOi.eyJzdWIiOi.sig_-x', 't=[redacted jwt]'],
    ['-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\nafter', '[redacted private key]\nafter'],
  ])('redacts %j', (input, output) => expect(redactString(input)).toBe(output));

  it.each(['keyboard layout', '/api/orders?page=2', 'spiffe://example.org/ns/default/sa/web', '-----BEGIN CERTIFICATE-----'])(
    'leaves %j alone',
    (input) => expect(redactString(input)).toBe(input),
  );

  it('copies an object only when something in it changed', () => {
    const clean = { a: { b: ['x'] } };
    expect(redactValue(clean)).toBe(clean);
    const dirty = { a: { b: ['Bearer x'] }, c: 1 };
    expect(redactValue(dirty)).toEqual({ a: { b: ['Bearer [redacted]'] }, c: 1 });
    expect(dirty.a.b[0]).toBe('Bearer x');
  });
});

import { describe, expect, it } from 'vitest';
import { parseSpiffeId, parseSvidId } from '../../src/spiffe/index.js';

describe('parseSpiffeId', () => {
  it.each([
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/ns/default/sa/web', 'example.org', '/ns/default/sa/web'],
    ['spiffe://a-b_c.9/x.y-z_1', 'a-b_c.9', '/x.y-z_1'],
  ])('accepts %s', (input, td, path) => {
    const r = parseSpiffeId(input);
    expect(r).toEqual({ ok: true, value: { trustDomain: td, path, uri: input } });
  });

  it.each([
    ['', 'empty'],
    ['http://example.org/x', 'must start with "spiffe://"'],
    ['SPIFFE://example.org/x', 'scheme must be lower-case'],
    ['spiffe:/x', 'must start with "spiffe://"'],
    ['spiffe://', 'trust domain is empty'],
    ['spiffe:///path', 'trust domain is empty'],
    ['spiffe://Example.org/x', 'lower case'],
    ['spiffe://example.org:8080/x', 'port'],
    ['spiffe://user@example.org/x', 'userinfo'],
    ['spiffe://example.org/x?q=1', 'query'],
    ['spiffe://example.org/x#f', 'fragment'],
    ['spiffe://example.org/', 'must not end with "/"'],
    ['spiffe://example.org/a//b', 'empty segment'],
    ['spiffe://example.org/a/./b', 'segment "."'],
    ['spiffe://example.org/a/../b', 'segment ".."'],
    ['spiffe://example.org/a%2Fb', 'percent-encoded'],
    ['spiffe://example.org/a b', 'may contain only'],
    [`spiffe://${'a'.repeat(256)}`, 'longer than 255'],
    [`spiffe://example.org/${'a'.repeat(2048)}`, 'longer than 2048 bytes'],
  ])('refuses %s', (input, reason) => {
    const r = parseSpiffeId(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(reason);
  });
});

describe('parseSvidId (the ID of a leaf SVID)', () => {
  it('refuses the trust domain ID: X509-SVID 3.1 and 5.2 require a path', () => {
    expect(parseSvidId('spiffe://example.org')).toEqual({
      ok: false,
      error: '"spiffe://example.org" is a trust domain ID, not a workload\'s: an SVID\'s SPIFFE ID must have a path (spiffe://example.org/...)',
    });
  });

  it('accepts an ID with a path, and refuses what is no SPIFFE ID at all as parseSpiffeId does', () => {
    expect(parseSvidId('spiffe://example.org/ns/default/sa/web')).toEqual(parseSpiffeId('spiffe://example.org/ns/default/sa/web'));
    expect(parseSvidId('spiffe://example.org/')).toEqual(parseSpiffeId('spiffe://example.org/'));
  });
});

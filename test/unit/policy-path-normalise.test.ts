import { describe, expect, it } from 'vitest';
import { normalisePath } from '../../src/authz/policy/path-normalise.js';

describe('normalisePath', () => {
  it.each([
    ['/', '/', [], ''],
    ['/a/b', '/a/b', ['a', 'b'], ''],
    ['/a/', '/a/', ['a'], ''],
    ['/a//b', '/a/b', ['a', 'b'], ''],
    ['//a///b//', '/a/b/', ['a', 'b'], ''],
    ['/a/./b', '/a/b', ['a', 'b'], ''],
    ['/a/../b', '/b', ['b'], ''],
    ['/../a', '/a', ['a'], ''],
    ['/../../..', '/', [], ''],
    ['/a/b/..', '/a/', ['a'], ''],
    ['/a/b/.', '/a/b/', ['a', 'b'], ''],
    ['/%61%62c', '/abc', ['abc'], ''],
    ['/%7e%7E', '/~~', ['~~'], ''],
    ['/%2e%2E/admin', '/admin', ['admin'], ''],
    ['/x/%2e%2e/admin', '/admin', ['admin'], ''],
    ['/a%2E/b', '/a./b', ['a.', 'b'], ''],
    ['/a%20b', '/a%20b', ['a%20b'], ''],
    ['/a%3a%3B', '/a%3A%3B', ['a%3A%3B'], ''],
    ['/%e2%82%ac', '/%E2%82%AC', ['%E2%82%AC'], ''],
    ['/a%25', '/a%25', ['a%25'], ''],
    ['/a?x=1', '/a', ['a'], '?x=1'],
    ['/a/../b?redirect=%2Fadmin', '/b', ['b'], '?redirect=%2Fadmin'],
    ['/a?q=\\x', '/a', ['a'], '?q=\\x'],
    ['/a?', '/a', ['a'], '?'],
  ])('normalises %j to %j', (target, path, segments, query) => {
    expect(normalisePath(target)).toEqual({ ok: true, path, segments, query });
  });

  it.each([
    ['', 'empty'],
    ['a/b', 'origin form'],
    ['*', 'origin form'],
    ['http://example.org/a', 'origin form'],
    ['/a%2Fb', 'encoded slash'],
    ['/a%2fb', 'encoded slash'],
    ['/a%5Cb', 'encoded backslash'],
    ['/a%5cb', 'encoded backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00', 'NUL'],
    ['/a\u0000b', 'NUL'],
    ['/a%', 'invalid percent-encoding'],
    ['/a%4', 'invalid percent-encoding'],
    ['/a%zz', 'invalid percent-encoding'],
    ['/a%G0', 'invalid percent-encoding'],
    ['/a#frag', 'fragment'],
    ['/a?b#c', 'fragment'],
    ['/a b', 'space'],
    ['/a\tb', 'control character'],
    ['/a\r\nb', 'control character'],
    ['/a?x=\u007f', 'control character'],
    ['/caf\u00e9', 'non-ASCII'],
  ])('refuses %j (%s)', (target, why) => {
    const result = normalisePath(target);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(why);
  });

  it('refuses a non-string target instead of throwing', () => {
    expect(normalisePath(undefined as unknown as string).ok).toBe(false);
  });

  it('returns the same string when nothing needs normalising (no allocation on the common path)', () => {
    const target = '/api/orders/42';
    const result = normalisePath(target);
    expect(result.ok && result.path).toBe(target);
  });
});

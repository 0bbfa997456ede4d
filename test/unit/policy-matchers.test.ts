import { describe, expect, it } from 'vitest';
import { parseConditionKey } from '../../src/authz/policy/condition-key.js';
import { normaliseRequestHost, parsePolicyHost } from '../../src/authz/policy/host.js';
import { methodBit, methodSetHas, methodSetValues, toMethodSet } from '../../src/authz/policy/http-method.js';
import { IpBlockMatcher, parseIpAddress, parseIpBlock } from '../../src/authz/policy/ip-block.js';
import { MatchContext, type MatchFacts } from '../../src/authz/policy/match-context.js';
import { normalisePath } from '../../src/authz/policy/path-normalise.js';
import { LiteralKind, matchesLiteral, matchGlobSegments, parsePathPattern, PathMatcher } from '../../src/authz/policy/path-pattern.js';
import { parsePrincipalPattern, PrincipalMatcher } from '../../src/authz/policy/principal-pattern.js';
import { listHas, listValues, toValueList } from '../../src/authz/policy/value-list.js';
import { WhenCondition } from '../../src/authz/policy/when-condition.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';

describe('principal patterns', () => {
  it.each([
    ['*', 'any'],
    [WEB, 'exact'],
    ['spiffe://example.org/ns/team-a/*', 'prefix'],
    ['spiffe://example.org/ns/team-*', 'prefix'],
    ['spiffe://example.org/*', 'prefix'],
    ['apikey:billing', 'exact'],
    ['apikey:*', 'prefix'],
  ])('parses %s as %s', (source, kind) => {
    const parsed = parsePrincipalPattern(source);
    expect(parsed.ok && parsed.value.kind).toBe(kind);
  });

  it.each([
    ['spiffe:/x', '"spiffe:/x" is not a SPIFFE ID'],
    ['https://example.org/web', 'is not a SPIFFE ID'],
    ['spiffe://example.org/a//b', 'empty segment'],
    ['spiffe://example.org*', 'whole trust domain'],
    ['spiffe://*', 'whole trust domain'],
    ['spiffe://example.org/*/web', 'only at the end'],
    ['spiffe:/x*', 'is not a SPIFFE ID prefix'],
    ['', 'is not a SPIFFE ID'],
    ['apikey:', '"apikey:": an API key\'s name must be 1-64 letters'],
    ['apikey:bill ing', 'must be 1-64 letters'],
    ['apikey:bill*', 'or "apikey:*" for any key'],
    ['apikey:a/b', 'must be 1-64 letters'],
  ])('refuses %j', (source, why) => {
    const parsed = parsePrincipalPattern(source);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });

  it('matches any, exact and prefix patterns; no principal matches none', () => {
    const any = new PrincipalMatcher(['*']);
    const some = new PrincipalMatcher([WEB, 'spiffe://example.org/ns/team-a/*']);
    expect(any.matches(WEB)).toBe(true);
    expect(any.matches(undefined)).toBe(false);
    expect(any.matches('')).toBe(false);
    expect(some.matches(WEB)).toBe(true);
    expect(some.matches(`${WEB}x`)).toBe(false);
    expect(some.matches('spiffe://example.org/ns/team-a/sa/reader')).toBe(true);
    expect(some.matches('spiffe://example.org/ns/team-ab/sa/reader')).toBe(false);
    expect(some.matches(undefined)).toBe(false);
  });

  it('matches an API key caller by its key name, or any key with apikey:*; SPIFFE patterns never match a key', () => {
    const billing = new PrincipalMatcher(['apikey:billing']);
    const anyKey = new PrincipalMatcher(['apikey:*']);
    const mesh = new PrincipalMatcher(['spiffe://example.org/*']);
    expect(billing.matches('apikey:billing')).toBe(true);
    expect(billing.matches('apikey:billing2')).toBe(false);
    expect(billing.matches('apikey:reports')).toBe(false);
    expect(anyKey.matches('apikey:reports')).toBe(true);
    expect(anyKey.matches(WEB)).toBe(false);
    expect(mesh.matches('apikey:billing')).toBe(false);
    expect(new PrincipalMatcher(['*']).matches('apikey:billing')).toBe(true);
  });
});

describe('path patterns', () => {
  it.each([
    ['/api/orders', 'exact'],
    ['/api/**', 'prefix'],
    ['/**', 'prefix'],
    ['/api/*', 'glob'],
    ['/a/*/c', 'glob'],
    ['/a/**/c', 'glob'],
    ['/%7Euser', 'exact'],
  ])('parses %s as %s', (source, kind) => {
    const parsed = parsePathPattern(source);
    expect(parsed.ok && parsed.value.kind).toBe(kind);
  });

  it.each([
    ['api', 'must start with "/"'],
    ['/api/', 'must not end with "/"'],
    ['/a//b', 'empty segment'],
    ['/a/../b', '"." and ".." segments'],
    ['/a/%2e%2e/b', '"." and ".." segments'],
    ['/a/./b', '"." and ".." segments'],
    ['/api/v*', 'whole segments'],
    ['/a%2Fb', 'encoded slash'],
    ['/a?x=1', 'query'],
  ])('refuses %j', (source, why) => {
    const parsed = parsePathPattern(source);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });

  function matcher(...patterns: string[]) {
    const m = new PathMatcher(patterns);
    return (target: string) => {
      const n = normalisePath(target);
      if (!n.ok) throw new Error(n.reason);
      const path = n.path.length > 1 && n.path.endsWith('/') ? n.path.slice(0, -1) : n.path;
      return m.matches(path, n.segments);
    };
  }

  it('matches an exact pattern only at that path (a trailing slash is not significant)', () => {
    const m = matcher('/api/orders');
    expect(['/api/orders', '/api/orders/', '/api//orders'].map(m)).toEqual([true, true, true]);
    expect(['/api/orders/1', '/api/order', '/api/ordersx', '/API/orders'].map(m)).toEqual([false, false, false, false]);
  });

  it('matches `*` as exactly one segment', () => {
    const m = matcher('/api/orders/*');
    expect(['/api/orders/1', '/api/orders/1/'].map(m)).toEqual([true, true]);
    expect(['/api/orders', '/api/orders/1/items', '/api/ordersx/1'].map(m)).toEqual([false, false, false]);
    expect(['/x', '/'].map(matcher('/*'))).toEqual([true, false]);
  });

  it('matches `**` as any number of segments, none included', () => {
    const m = matcher('/admin/**');
    expect(['/admin', '/admin/', '/admin/a', '/admin/a/b/c'].map(m)).toEqual([true, true, true, true]);
    expect(['/adminx', '/', '/x/admin'].map(m)).toEqual([false, false, false]);
    expect(['/', '/a/b'].map(matcher('/**'))).toEqual([true, true]);
  });

  it('matches globs with wildcards in the middle', () => {
    const mid = matcher('/a/*/c');
    expect(['/a/b/c', '/a/x/c'].map(mid)).toEqual([true, true]);
    expect(['/a/c', '/a/b/b/c', '/a/b/c/d'].map(mid)).toEqual([false, false, false]);
    const deep = matcher('/a/**/c');
    expect(['/a/c', '/a/b/c', '/a/b/d/c'].map(deep)).toEqual([true, true, true]);
    expect(['/a/b/d', '/a', '/b/c'].map(deep)).toEqual([false, false, false]);
    const both = matcher('/a/**/**');
    expect(['/a', '/a/b/c'].map(both)).toEqual([true, true]);
    expect(['/q/x', '/q/x/y', '/q/y'].map(matcher('/*/x/**'))).toEqual([true, true, false]);
  });

  it('normalises patterns like paths: an encoded unreserved character is the character', () => {
    expect(matcher('/%7Euser')('/~user')).toBe(true);
    expect(matcher('/~user')('/%7euser')).toBe(true);
  });

  it('backtracks only as far as the last `**`', () => {
    expect(matchGlobSegments(['**', 'a', '**', 'b'], ['x', 'a', 'y', 'a', 'z', 'b'])).toBe(true);
    expect(matchGlobSegments(['**', 'a', '*'], ['a', 'a'])).toBe(true);
    expect(matchGlobSegments(['**', 'a', '*'], ['a'])).toBe(false);
    expect(matchGlobSegments(['a', '*', 'c'], ['x', 'a', 'b', 'c'], 1)).toBe(true);
  });

  it('holds one literal, and how a path may stand to it, when every pattern is that literal, a child or a subtree of it', () => {
    const literal = (...patterns: string[]) => {
      const m = new PathMatcher(patterns);
      return [m.literal, m.literalKinds];
    };
    const { exact, child, prefix } = LiteralKind;
    expect(literal('/a/b')).toEqual(['/a/b', exact]);
    expect(literal('/a/b', '/a/b/*')).toEqual(['/a/b', exact | child]);
    expect(literal('/a/b/**', '/a/b/*', '/a/b')).toEqual(['/a/b', exact | child | prefix]);
    expect(literal('/**')).toEqual(['', prefix]);
    expect(literal('/*')).toEqual(['', child]);
    // Two literals, a glob, or `/` with `/*` (the literals "/" and "") leave it to the matcher.
    expect(literal('/a', '/b')).toEqual([null, 0]);
    expect(literal('/a', '/a/*/c')).toEqual([null, 0]);
    expect(literal('/', '/*')).toEqual([null, 0]);
  });

  it('tests a path against that literal exactly as the whole matcher does', () => {
    const lists = [['/a'], ['/a/*'], ['/a/**'], ['/a', '/a/*'], ['/a', '/a/**'], ['/a/*', '/a/**'], ['/a', '/a/*', '/a/**'], ['/a/b/**'], ['/**'], ['/*'], ['/']];
    const targets = ['/', '/a', '/a/', '/ab', '/a/b', '/a/b/', '/a/b/c', '/b', '/b/a', '/a%2Db'];
    for (const list of lists) {
      const m = new PathMatcher(list);
      expect(m.literal).not.toBeNull();
      for (const target of targets) {
        const n = normalisePath(target);
        if (!n.ok) throw new Error(n.reason);
        const path = n.path.length > 1 && n.path.endsWith('/') ? n.path.slice(0, -1) : n.path;
        expect({ list, target, matches: matchesLiteral(path, m.literal!, m.literalKinds) }).toEqual({ list, target, matches: m.matches(path, n.segments) });
      }
    }
  });
});

describe('IP blocks', () => {
  it.each([
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['192.168.1.7', '192.168.1.7', true],
    ['192.168.1.7', '192.168.1.8', false],
    ['0.0.0.0/0', '1.2.3.4', true],
    ['0.0.0.0/0', '::1', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::/0', '2001:db8::1', true],
    ['fe80::/10', 'fe80::1', true],
    ['::ffff:10.0.0.1', '10.0.0.1', true],
    ['10.0.0.0/8', 'not-an-ip', false],
  ])('%s contains %s: %s', (block, ip, expected) => {
    expect(new IpBlockMatcher([block]).contains(parseIpAddress(ip))).toBe(expected);
  });

  it('treats a missing or unparseable source address as in no block', () => {
    const m = new IpBlockMatcher(['0.0.0.0/0', '::/0']);
    expect(m.contains(parseIpAddress(undefined))).toBe(false);
    expect(m.contains(parseIpAddress('fe80::1%eth0'))).toBe(false);
  });

  it.each([
    ['10.0.0.0/33', 'prefix length must be 0-32'],
    ['10.0.0.0/-1', 'prefix length'],
    ['10.0.0.0/', 'prefix length'],
    ['2001:db8::/129', '0-128'],
    ['10.0.0.1/8', 'bits set beyond the prefix'],
    ['10.0.0/8', 'not an IPv4 or IPv6 address'],
    ['example.org/8', 'not an IPv4 or IPv6 address'],
  ])('refuses %j', (source, why) => {
    const parsed = parseIpBlock(source);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });
});

describe('hosts', () => {
  it.each([
    ['orders', 'orders'],
    ['Orders.Default.SVC', 'orders.default.svc'],
    ['orders:8080', 'orders'],
    ['orders.default.svc.cluster.local.', 'orders.default.svc.cluster.local'],
    ['ORDERS.:443', 'orders'],
    ['[::1]:8443', '[::1]'],
    ['[::1]', '[::1]'],
    ['::1', '::1'],
    ['', ''],
  ])('compares request host %j as %j', (host, expected) => {
    expect(normaliseRequestHost(host)).toBe(expected);
  });

  it('accepts policy hosts in any case and refuses ports and wildcards', () => {
    expect(parsePolicyHost('Orders.Default.svc')).toEqual({ ok: true, value: 'orders.default.svc' });
    expect(parsePolicyHost('orders:8080')).toMatchObject({ ok: false, error: expect.stringContaining('leave the port out') });
    expect(parsePolicyHost('*.example.org')).toMatchObject({ ok: false, error: expect.stringContaining('wildcards') });
    expect(parsePolicyHost('a b')).toMatchObject({ ok: false, error: expect.stringContaining('is not a host name') });
  });
});

describe('methods and value lists', () => {
  it('compiles standard methods to a bit mask and others to a list', () => {
    const standard = toMethodSet(['GET', 'HEAD']);
    expect(typeof standard).toBe('number');
    expect(methodSetHas(standard, 'GET', methodBit('GET'))).toBe(true);
    expect(methodSetHas(standard, 'POST', methodBit('POST'))).toBe(false);
    expect(methodSetHas(standard, 'PURGE', methodBit('PURGE'))).toBe(false);
    expect(methodSetValues(standard)).toEqual(['GET', 'HEAD']);
    const custom = toMethodSet(['GET', 'PURGE']);
    expect(methodSetHas(custom, 'PURGE', methodBit('PURGE'))).toBe(true);
    expect(methodSetHas(custom, 'GET', methodBit('GET'))).toBe(true);
    expect(methodSetHas(custom, 'POST', methodBit('POST'))).toBe(false);
  });

  it('stores one value as itself, a few as an array, many as a set, and finds them all', () => {
    const many = Array.from({ length: 20 }, (_, i) => `h${i}`);
    for (const values of [['a'], ['a', 'b', 'a'], many]) {
      const list = toValueList(values);
      for (const v of values) expect(listHas(list, v)).toBe(true);
      expect(listHas(list, 'zz')).toBe(false);
      expect([...listValues(list)].sort()).toEqual([...new Set(values)].sort());
    }
    expect(toValueList(['a'])).toBe('a');
    expect(listHas(toValueList([8080]), 8080)).toBe(true);
  });
});

describe('when conditions', () => {
  function ctx(overrides: Partial<MatchFacts> = {}): MatchContext {
    return new MatchContext({
      principal: WEB,
      sourceIp: '10.1.2.3',
      port: 8080,
      method: 'GET',
      methodBit: 1,
      host: 'orders',
      path: '/',
      segments: [],
      headers: {},
      context: undefined,
      claims: undefined,
      ...overrides,
    });
  }
  function condition(key: string, values: string[]): WhenCondition {
    const parsed = parseConditionKey(key);
    if (!parsed.ok) throw new Error(parsed.error);
    return new WhenCondition(`when[0] ${key}`, parsed.value, values);
  }

  it.each([
    ['request.headers[X-Tenant]', { kind: 'header', name: 'x-tenant' }],
    ['jwt.claims.scope', { kind: 'claim', path: ['scope'] }],
    ['jwt.claims.realm_access.roles', { kind: 'claim', path: ['realm_access', 'roles'] }],
    ['source.ip', { kind: 'sourceIp' }],
    ['source.principal', { kind: 'sourcePrincipal' }],
    ['context[route]', { kind: 'context', name: 'route' }],
  ])('parses key %s', (key, expected) => {
    expect(parseConditionKey(key)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['request.header[x]', 'unknown key'],
    ['request.headers[a b]', 'is not a header name'],
    ['jwt.claim.scope', 'unknown key'],
    ['jwt.claims.a..b', 'empty part'],
    ['context[]', 'empty'],
    ['source.port', 'unknown key'],
  ])('refuses key %j', (key, why) => {
    const parsed = parseConditionKey(key);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });

  it('matches headers exactly, and a missing header never', () => {
    const c = condition('request.headers[x-tenant]', ['a', 'b']);
    expect(c.matches(ctx({ headers: { 'x-tenant': 'a' } }))).toBe(true);
    expect(c.matches(ctx({ headers: { 'x-tenant': 'A' } }))).toBe(false);
    expect(c.matches(ctx())).toBe(false);
  });

  it('never reads inherited properties as headers, context or claims', () => {
    expect(condition('request.headers[constructor]', ['[object Object]']).matches(ctx())).toBe(false);
    expect(condition('context[toString]', ['x']).matches(ctx({ context: {} }))).toBe(false);
    expect(condition('jwt.claims.constructor.name', ['Object']).matches(ctx({ claims: {} }))).toBe(false);
  });

  it('matches a claim by equality, by membership of an array, or inside a space-separated scope', () => {
    const scope = condition('jwt.claims.scope', ['orders.read']);
    expect(scope.matches(ctx({ claims: { scope: 'orders.read' } }))).toBe(true);
    expect(scope.matches(ctx({ claims: { scope: 'profile orders.read email' } }))).toBe(true);
    expect(scope.matches(ctx({ claims: { scope: 'orders.readwrite' } }))).toBe(false);
    expect(scope.matches(ctx({ claims: { scope: ['email', 'orders.read'] } }))).toBe(true);
    expect(scope.matches(ctx())).toBe(false);
    const sub = condition('jwt.claims.sub', ['alice']);
    // Only scope-like claims split on spaces.
    expect(sub.matches(ctx({ claims: { sub: 'alice smith' } }))).toBe(false);
    const roles = condition('jwt.claims.realm_access.roles', ['admin']);
    expect(roles.matches(ctx({ claims: { realm_access: { roles: ['user', 'admin'] } } }))).toBe(true);
    expect(roles.matches(ctx({ claims: { realm_access: ['admin'] } }))).toBe(false);
    expect(condition('jwt.claims.level', ['3']).matches(ctx({ claims: { level: 3 } }))).toBe(true);
    expect(condition('jwt.claims.admin', ['true']).matches(ctx({ claims: { admin: true } }))).toBe(true);
    expect(condition('jwt.claims.admin', ['true']).matches(ctx({ claims: { admin: { true: 1 } } }))).toBe(false);
  });

  it('matches source.ip by CIDR, source.principal by pattern and context extensions by value', () => {
    expect(condition('source.ip', ['10.0.0.0/8']).matches(ctx())).toBe(true);
    expect(condition('source.ip', ['192.168.0.0/16']).matches(ctx())).toBe(false);
    expect(condition('source.principal', ['spiffe://example.org/ns/default/*']).matches(ctx())).toBe(true);
    expect(condition('source.principal', ['*']).matches(ctx({ principal: undefined }))).toBe(false);
    expect(condition('context[route]', ['orders']).matches(ctx({ context: { route: 'orders' } }))).toBe(true);
    expect(condition('context[route]', ['orders']).matches(ctx())).toBe(false);
  });
});

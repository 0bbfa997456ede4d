import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { loadPolicyCases, loadPolicyEngine, loadPolicyEngineFromText, type AuthzRequest } from '../../src/authz/index.js';
import type { Logger } from '../../src/telemetry/index.js';
import { tempDir } from '../helpers/cli.js';

const POLICY = `
explainDenials: false
rules:
  - { name: tenants, action: allow, when: [{ key: "request.headers[x-tenant]", values: [a] }] }
`;
const dir = tempDir('meshward-engine-');
afterAll(() => dir.cleanup());

const req = (overrides: Partial<AuthzRequest> = {}): AuthzRequest => ({ method: 'GET', host: 'orders', path: '/', headers: { 'x-tenant': 'a' }, ...overrides });

describe('PolicyDecisionEngine', () => {
  const { engine } = loadPolicyEngineFromText(POLICY);

  it('exposes explainDenials for whoever renders denials', () => {
    expect(engine.explainDenials).toBe(false);
    expect(loadPolicyEngineFromText('defaultAction: deny').engine.explainDenials).toBe(true);
  });

  it.each([
    ['no method', { method: '' }, 'the request has no method'],
    ['a non-string method', { method: 7 }, 'the request has no method'],
    ['no path', { path: undefined }, 'the request has no path'],
    ['no host', { host: null }, 'the request has no host'],
    ['headers that are not a map', { headers: 'x' }, 'headers are not a map'],
    ['a non-string principal', { principal: {} }, 'the principal is not a string'],
    ['a fractional port', { destinationPort: 80.5 }, 'not an integer'],
    ['a path that does not normalise', { path: '/a/%2e%2e%2fetc' }, 'encoded slash'],
    ['an absolute-form target', { path: 'http://orders/' }, 'origin form'],
    // URL parsers read host admin.internal here, and the engine must not judge it as orders (an ext_authz caller's host too).
    ['a host with userinfo', { host: 'orders:1@admin.internal' }, 'is not HOST[:PORT]'],
    ['a host with a path', { host: 'orders:abc/../x' }, 'is not HOST[:PORT]'],
    ['a port out of range', { host: 'orders:70000' }, 'port out of range'],
  ])('refuses a request with %s as invalid (400)', async (_what, overrides, reason) => {
    const decision = await engine.decide(req(overrides as unknown as Partial<AuthzRequest>));
    expect(decision).toEqual({ kind: 'invalid', reason: expect.stringContaining(reason) });
  });

  it('refuses a missing request instead of throwing', async () => {
    expect(await engine.decide(undefined as unknown as AuthzRequest)).toMatchObject({ kind: 'invalid' });
  });

  it('accepts a request without headers', async () => {
    expect(await engine.decide(req({ headers: undefined as unknown as Record<string, string> }))).toMatchObject({ kind: 'deny', rule: 'default' });
  });

  it('fails closed: any error while deciding is a logged deny, never a throw', async () => {
    const error = vi.fn();
    const { engine: logged } = loadPolicyEngineFromText(POLICY, { logger: { error } as unknown as Logger });
    const hostile = new Proxy({}, {
      getOwnPropertyDescriptor() {
        throw new Error('boom');
      },
    });
    const decision = await logged.decide(req({ headers: hostile as Record<string, string>, requestId: 'r-1' }));
    expect(decision).toEqual({ kind: 'deny', rule: 'error', reason: 'internal error: boom' });
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ requestId: 'r-1' }), expect.stringContaining('denying'));
  });

  it('loads from a file, and refuses an invalid one with a ConfigError naming the file', () => {
    const good = join(dir.dir, 'good.yaml');
    writeFileSync(good, POLICY);
    expect(loadPolicyEngine(good).policy.rules).toHaveLength(1);
    const bad = join(dir.dir, 'bad.yaml');
    writeFileSync(bad, 'rules: [{ name: r, action: allow, to: { ports: [0] } }]');
    expect(() => loadPolicyEngine(bad)).toThrow(ConfigError);
    expect(() => loadPolicyEngine(bad)).toThrow('bad.yaml: rules[0].to.ports[0]: 0 is not a port');
    expect(() => loadPolicyEngine(join(dir.dir, 'none.yaml'))).toThrow('none.yaml: file not found');
  });
});

describe('policy test cases', () => {
  const { policy } = loadPolicyEngineFromText(`
rules: [{ name: r, action: allow }]
rateLimits: [{ name: l, requestsPerSecond: 1 }]
`);

  function problems(yaml: string): string[] {
    const file = join(dir.dir, 'cases.yaml');
    writeFileSync(file, yaml);
    try {
      loadPolicyCases(file, policy);
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.message.split('\n');
    }
  }

  it('accepts cases naming rules and limits the policy has', () => {
    expect(problems(`
cases:
  - { name: a, request: { path: / }, expect: allow, rule: r }
  - { name: b, request: { path: / }, expect: deny, rule: default }
  - { name: c, request: { path: / }, expect: rate_limited, rule: l, repeat: 3 }
`)).toEqual([]);
  });

  it('names the file, the path inside it and the reason', () => {
    // The file as the caller named it: here, a full path.
    const file = join(dir.dir, 'cases.yaml');
    expect(problems(`
cases:
  - { name: a, request: { path: / }, expect: allow, rule: nope }
  - { name: b, request: { path: / }, expect: rate_limited, rule: r }
  - { name: c, request: { path: / }, expect: invalid, rule: r }
  - { name: d, request: { path: /, jwt: x.y.z }, expect: allow }
`)).toEqual([
      `${file}: cases[0].rule: the policy has no rule named "nope"`,
      `${file}: cases[1].rule: the policy has no rate limit named "r"`,
      `${file}: cases[2].rule: a rule is not named by "invalid" decisions; remove it`,
      `${file}: cases[3].request.jwt: the policy has no jwt section to send a token to`,
    ]);
    expect(problems('cases: [{ name: a, request: { path: / }, expect: permit }]')[0]).toMatch(/cases.yaml: cases\[0\].expect: must be one of "allow", "deny", .*not "permit"$/);
    expect(problems('cases: [{ name: a, request: { pth: / }, expect: allow }]')).toEqual([
      `${file}: cases[0].request.path: is required`,
      expect.stringContaining(`${file}: cases[0].request: unknown field "pth" (did you mean "path"?)`),
    ]);
    expect(problems('cases: []')).toEqual([`${file}: cases: give at least one case`]);
  });
});

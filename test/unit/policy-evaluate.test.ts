import { describe, expect, it } from 'vitest';
import { loadPolicyEngineFromText, policySchema, createPolicyEngine, type AuthzRequest } from '../../src/authz/index.js';
import { withPooledStrings } from '../../src/authz/policy/string-pool.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const BILLING = 'spiffe://example.org/ns/billing/sa/api';

function engineFor(yaml: string) {
  return loadPolicyEngineFromText(yaml).engine;
}

function req(overrides: Partial<AuthzRequest> = {}): AuthzRequest {
  return { principal: WEB, method: 'GET', host: 'orders', path: '/api/orders', headers: {}, sourceIp: '10.1.2.3', destinationPort: 8080, ...overrides };
}

describe('evaluation order', () => {
  const engine = engineFor(`
rules:
  - name: allow-web
    action: allow
    from: { principals: ["${WEB}"] }
  - name: no-admin
    action: deny
    to: { paths: ["/admin/**"] }
  - name: no-delete
    action: deny
    to: { methods: [DELETE] }
  - name: allow-billing-reads
    action: allow
    from: { principals: ["${BILLING}"] }
    to: { methods: [GET] }
`);

  it('denies when any deny rule matches, even if an allow rule earlier in the file matches too', async () => {
    expect(await engine.decide(req({ path: '/admin/x' }))).toEqual({ kind: 'deny', rule: 'no-admin', reason: 'denied by rule "no-admin"' });
  });

  it('names the first matching deny rule in file order', async () => {
    expect(await engine.decide(req({ path: '/admin', method: 'DELETE' }))).toMatchObject({ kind: 'deny', rule: 'no-admin' });
  });

  it('allows when an allow rule matches and no deny rule does, and names the caller', async () => {
    expect(await engine.decide(req())).toEqual({ kind: 'allow', rule: 'allow-web', principal: WEB });
    expect(await engine.decide(req({ principal: BILLING }))).toEqual({ kind: 'allow', rule: 'allow-billing-reads', principal: BILLING });
  });

  it('applies defaultAction (deny) when nothing matches', async () => {
    expect(await engine.decide(req({ principal: BILLING, method: 'POST' }))).toEqual({
      kind: 'deny',
      rule: 'default',
      reason: 'no rule allows the request (defaultAction: deny)',
    });
    expect(await engine.decide(req({ principal: undefined }))).toMatchObject({ kind: 'deny', rule: 'default' });
  });

  it('applies defaultAction: allow, still under deny rules', async () => {
    const open = engineFor('defaultAction: allow\nrules: [{ name: no-admin, action: deny, to: { paths: ["/admin/**"] } }]');
    expect(await open.decide(req({ principal: undefined }))).toEqual({ kind: 'allow', rule: 'default', principal: undefined });
    expect(await open.decide(req({ path: '/admin' }))).toMatchObject({ kind: 'deny', rule: 'no-admin' });
  });

  it('compares methods as upper case and hosts without case or port', async () => {
    const e = engineFor('rules: [{ name: r, action: allow, to: { methods: [GET], hosts: [Orders.Default.Svc] } }]');
    expect(await e.decide(req({ method: 'get', host: 'ORDERS.default.svc:8080' }))).toMatchObject({ kind: 'allow' });
    expect(await e.decide(req({ host: 'orders' }))).toMatchObject({ kind: 'deny' });
  });

  it('matches methods without case, both ways, so no spelling of a denied method slips past a deny rule', async () => {
    const e = engineFor('defaultAction: allow\nrules: [{ name: no-delete, action: deny, to: { methods: [delete, Purge] } }]');
    for (const method of ['DELETE', 'delete', 'Delete', 'PURGE', 'purge']) expect(await e.decide(req({ method })), method).toMatchObject({ kind: 'deny', rule: 'no-delete' });
    expect(await e.decide(req({ method: 'get' }))).toMatchObject({ kind: 'allow' });
  });
});

describe('from and to', () => {
  it('requires every given field; inside a list any entry', async () => {
    const e = engineFor(`
rules:
  - name: r
    action: allow
    from: { principals: ["${WEB}", "spiffe://example.org/ns/team-a/*"], ipBlocks: ["10.0.0.0/8", "192.168.0.0/16"] }
    to: { hosts: [orders], methods: [GET, HEAD], paths: ["/api/orders", "/api/orders/*"], ports: [8080, 8443] }
`);
    expect(await e.decide(req())).toMatchObject({ kind: 'allow' });
    expect(await e.decide(req({ principal: 'spiffe://example.org/ns/team-a/sa/x', sourceIp: '192.168.1.1', method: 'HEAD', path: '/api/orders/7', destinationPort: 8443 }))).toMatchObject({ kind: 'allow' });
    for (const miss of [
      { principal: BILLING },
      { principal: undefined },
      { sourceIp: '172.16.0.1' },
      { sourceIp: undefined },
      { host: 'billing' },
      { method: 'POST' },
      { path: '/api/orders/7/items' },
      { destinationPort: 9090 },
      { destinationPort: undefined },
    ]) {
      expect({ miss, decision: await e.decide(req(miss)) }).toMatchObject({ miss, decision: { kind: 'deny', rule: 'default' } });
    }
  });

  it('excludes with not* fields; a request without the fact is in no list', async () => {
    const e = engineFor(`
rules:
  - name: r
    action: allow
    from: { notPrincipals: ["spiffe://example.org/ns/untrusted/*"], notIpBlocks: ["10.66.0.0/16"] }
    to: { notHosts: [secrets], notMethods: [DELETE], notPaths: ["/admin/**"] }
`);
    expect(await e.decide(req())).toMatchObject({ kind: 'allow' });
    expect(await e.decide(req({ principal: undefined, sourceIp: undefined }))).toMatchObject({ kind: 'allow' });
    for (const miss of [
      { principal: 'spiffe://example.org/ns/untrusted/sa/x' },
      { sourceIp: '10.66.1.1' },
      { host: 'secrets:443' },
      { method: 'delete' },
      { path: '/admin/x' },
    ]) {
      expect({ miss, decision: await e.decide(req(miss)) }).toMatchObject({ miss, decision: { kind: 'deny' } });
    }
  });

  it('treats an empty list as not given', async () => {
    const e = engineFor('rules: [{ name: r, action: allow, from: { principals: [] }, to: { notPaths: [] } }]');
    expect(await e.decide(req({ principal: undefined }))).toMatchObject({ kind: 'allow' });
  });

  it('matches `*` principals only for authenticated callers', async () => {
    const e = engineFor('rules: [{ name: r, action: allow, from: { principals: ["*"] } }]');
    expect(await e.decide(req())).toMatchObject({ kind: 'allow' });
    expect(await e.decide(req({ principal: undefined }))).toMatchObject({ kind: 'deny' });
    expect(await e.decide(req({ principal: '' }))).toMatchObject({ kind: 'deny' });
  });

  it('tests when conditions against headers and context extensions', async () => {
    const e = engineFor(`
rules:
  - name: r
    action: allow
    when:
      - { key: "request.headers[x-tenant]", values: [a, b] }
      - { key: "context[route]", values: [orders] }
`);
    expect(await e.decide(req({ headers: { 'x-tenant': 'b' }, contextExtensions: { route: 'orders' } }))).toMatchObject({ kind: 'allow' });
    expect(await e.decide(req({ headers: { 'x-tenant': 'c' }, contextExtensions: { route: 'orders' } }))).toMatchObject({ kind: 'deny' });
    expect(await e.decide(req({ headers: { 'x-tenant': 'a' } }))).toMatchObject({ kind: 'deny' });
  });
});

describe('audit and dry-run rules', () => {
  const engine = engineFor(`
rules:
  - { name: watch-deletes, action: audit, to: { methods: [DELETE] } }
  - { name: watch-all, action: audit }
  - { name: future-deny-billing, action: deny, dryRun: true, from: { principals: ["${BILLING}"] } }
  - { name: future-allow-web-deletes, action: allow, dryRun: true, to: { methods: [DELETE] } }
  - { name: allow-reads, action: allow, to: { methods: [GET] } }
`);

  it('reports matching audit rules without changing the decision', async () => {
    expect(await engine.decide(req())).toEqual({ kind: 'allow', rule: 'allow-reads', principal: WEB, audit: ['watch-all'] });
    expect(await engine.decide(req({ method: 'DELETE' }))).toMatchObject({ kind: 'deny', rule: 'default', audit: ['watch-deletes', 'watch-all'] });
  });

  it('reports what dry-run rules would decide and never enforces them', async () => {
    expect(await engine.decide(req({ principal: BILLING }))).toMatchObject({
      kind: 'allow',
      rule: 'allow-reads',
      dryRun: [{ rule: 'future-deny-billing', wouldBe: 'deny' }],
    });
    expect(await engine.decide(req({ method: 'DELETE' }))).toMatchObject({
      kind: 'deny',
      rule: 'default',
      dryRun: [{ rule: 'future-allow-web-deletes', wouldBe: 'allow' }],
    });
  });

  it('leaves the fields out when nothing is audited or dry-run', async () => {
    const e = engineFor('rules: [{ name: r, action: allow }]');
    expect(await e.decide(req())).toEqual({ kind: 'allow', rule: 'r', principal: WEB });
  });
});

describe('explain', () => {
  const engine = engineFor(`
rules:
  - name: no-admin
    action: deny
    to: { paths: ["/admin/**"] }
  - name: web-reads
    action: allow
    from: { principals: ["${WEB}"] }
    to: { methods: [GET], paths: ["/api/**"] }
    when: [{ key: "request.headers[x-tenant]", values: [a] }]
rateLimits:
  - { name: api, match: { paths: ["/api/**"] }, requestsPerSecond: 1 }
`);

  it('says, rule by rule, whether it matched and the first condition that did not', async () => {
    const explanation = await engine.explain(req({ path: '/x/../admin?y=1' }));
    expect(explanation.decision).toMatchObject({ kind: 'deny', rule: 'no-admin' });
    expect(explanation.target).toMatchObject({ ok: true, path: '/admin', query: '?y=1' });
    expect(explanation.rules).toEqual([
      { name: 'no-admin', action: 'deny', dryRun: false, matched: true },
      { name: 'web-reads', action: 'allow', dryRun: false, matched: false, failed: { condition: 'to.paths', reason: '"/admin" matches none of ["/api/**"]' } },
    ]);
    expect(explanation.rateLimits).toEqual([
      { name: 'api', matched: false, failed: { condition: 'match.paths', reason: '"/admin" matches none of ["/api/**"]' } },
    ]);
  });

  it('explains missing facts and when conditions', async () => {
    const anonymous = await engine.explain(req({ principal: undefined }));
    expect(anonymous.rules![1]!.failed).toEqual({
      condition: 'from.principals',
      reason: `the request has no principal (expected one of ["${WEB}"])`,
    });
    const tenant = await engine.explain(req({ headers: { 'x-tenant': 'b' } }));
    expect(tenant.rules![1]!.failed).toEqual({ condition: 'when[0] request.headers[x-tenant]', reason: '"b" matches none of ["a"]' });
  });

  it('stops at the refusal for a path that cannot be judged', async () => {
    const explanation = await engine.explain(req({ path: '/api%2F../admin' }));
    expect(explanation.decision).toEqual({ kind: 'invalid', reason: 'the path contains an encoded slash (%2F)' });
    expect(explanation.rules).toBeUndefined();
  });
});

// The indexes must give exactly the answer a plain scan of the rules in file order gives.
describe('indexed evaluation agrees with a scan', () => {
  function prng(seed: number) {
    let a = seed;
    return () => {
      a = (a * 1103515245 + 12345) & 0x7fffffff;
      return a / 0x7fffffff;
    };
  }
  const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const some = <T>(random: () => number, items: readonly T[]): T[] => [...new Set([pick(random, items), pick(random, items)])];
  const HOSTS = ['a', 'b', 'c', 'd'];
  const CALLERS = ['spiffe://t/ns/x/sa/1', 'spiffe://t/ns/x/sa/2', 'spiffe://t/ns/y/sa/3'];
  const PRINCIPALS = [...CALLERS, 'spiffe://t/ns/x/*', '*'];
  const PATHS = ['/', '/p', '/p/q', '/p/*', '/p/**', '/q/**', '/*/q', '/**'];
  const METHODS = ['GET', 'POST', 'DELETE'];
  const ACTIONS = ['allow', 'allow', 'deny', 'audit'];
  const TENANTS = ['t1', 't2', 't3'];

  function randomRule(random: () => number, i: number) {
    const to: Record<string, unknown> = {};
    const from: Record<string, unknown> = {};
    if (random() < 0.6) to.hosts = some(random, HOSTS);
    if (random() < 0.5) from.principals = some(random, PRINCIPALS);
    if (random() < 0.5) to.paths = some(random, PATHS);
    if (random() < 0.4) to.methods = some(random, METHODS);
    if (random() < 0.3) to.ports = [pick(random, [80, 443])];
    if (random() < 0.15) to.notPaths = some(random, PATHS);
    if (random() < 0.1) from.notPrincipals = some(random, PRINCIPALS);
    const when = random() < 0.2 ? [{ key: 'request.headers[x-t]', values: some(random, TENANTS) }] : undefined;
    const action = pick(random, ACTIONS);
    return { name: `r${i}`, action, dryRun: action !== 'audit' && random() < 0.1, from, to, when };
  }

  it('on random policies and requests', async () => {
    const random = prng(7);
    for (let p = 0; p < 40; p++) {
      const doc = policySchema.parse({ rules: Array.from({ length: 5 + Math.floor(random() * 60) }, (_, i) => randomRule(random, i)) });
      const engine = createPolicyEngine(doc);
      for (let r = 0; r < 60; r++) {
        const request = req({
          principal: random() < 0.2 ? undefined : pick(random, CALLERS),
          host: pick(random, HOSTS),
          path: pick(random, ['/', '/p', '/p/q', '/p/q/r', '/q', '/z/q', '/p/']),
          method: pick(random, METHODS),
          destinationPort: pick(random, [80, 443, undefined]),
          headers: random() < 0.3 ? {} : { 'x-t': pick(random, TENANTS) },
        });
        const decision = await engine.decide(request);
        const { rules } = await engine.explain(request);
        const scanned = (action: string) => rules!.find((t) => t.matched && !t.dryRun && t.action === action)?.name;
        const expected = scanned('deny') ?? scanned('allow') ?? 'default';
        expect({ request, rule: decision.kind === 'allow' || decision.kind === 'deny' ? decision.rule : decision.kind }).toEqual({ request, rule: expected });
        const audits = rules!.filter((t) => t.matched && t.action === 'audit' && !t.dryRun).map((t) => t.name);
        expect('audit' in decision ? decision.audit : undefined).toEqual(audits.length > 0 ? audits : undefined);
        const dryRuns = rules!.filter((t) => t.matched && t.dryRun).map((t) => t.name);
        expect('dryRun' in decision ? decision.dryRun!.map((d) => d.rule) : undefined).toEqual(dryRuns.length > 0 ? dryRuns : undefined);
      }
    }
  });
});

describe('compiled policy', () => {
  const doc = policySchema.parse({
    rules: [
      { name: 'a', action: 'allow', from: { principals: [WEB] }, to: { paths: ['/x', '/x/*'] }, when: [{ key: 'request.headers[x-tenant]', values: ['blue'] }] },
      { name: 'b', action: 'deny', from: { principals: [WEB] }, to: { paths: ['/x', '/x/*'] }, when: [{ key: 'request.headers[x-tenant]', values: ['blue'] }] },
      { name: 'c', action: 'allow', from: { principals: [BILLING] }, to: { paths: ['/y'] }, when: [{ key: 'request.headers[x-tenant]', values: ['green'] }] },
    ],
  });

  it('shares one matcher between rules that repeat a list, and only then', () => {
    const [a, b, c] = createPolicyEngine(doc).policy.rules;
    expect(b!.principals).toBe(a!.principals);
    expect(b!.paths).toBe(a!.paths);
    expect(b!.when).toBe(a!.when);
    expect(c!.principals).not.toBe(a!.principals);
    expect(c!.paths).not.toBe(a!.paths);
    expect(c!.when).not.toBe(a!.when);
  });

  it('compiles from an exact copy of the document, strings, numbers and flags alike', () => {
    const full = policySchema.parse({
      defaultAction: 'allow',
      explainDenials: false,
      rules: [
        {
          name: 'r',
          action: 'deny',
          dryRun: true,
          from: { principals: [WEB, 'spiffe://example.org/ns/team-a/*'], ipBlocks: ['10.0.0.0/8'] },
          to: { hosts: ['Orders.'], ports: [8080], methods: ['get'], paths: ['/a/**'], notPaths: ['/a/b'] },
          when: [{ key: 'request.headers[x-n]', values: [1, true, 'x\u00e9'] }],
        },
      ],
      rateLimits: [{ name: 'l', match: { paths: ['/a/**'] }, requestsPerSecond: 2.5, burst: 3, per: 'ip' }],
    });
    expect(withPooledStrings(full)).toEqual(full);
    expect(withPooledStrings(full)).not.toBe(full);
  });

  it('leaves the document it was compiled from as it was', () => {
    const before = structuredClone(doc);
    createPolicyEngine(doc);
    expect(doc).toEqual(before);
  });

  it('decides and explains each rule that shares a matcher as its own', async () => {
    const engine = createPolicyEngine(doc);
    expect(await engine.decide(req({ path: '/x/1', headers: { 'x-tenant': 'blue' } }))).toMatchObject({ kind: 'deny', rule: 'b', reason: 'denied by rule "b"' });
    const { rules } = await engine.explain(req({ path: '/x/1', headers: { 'x-tenant': 'green' } }));
    expect(rules!.map((r) => [r.name, r.failed?.condition])).toEqual([
      ['a', 'when[0] request.headers[x-tenant]'],
      ['b', 'when[0] request.headers[x-tenant]'],
      ['c', 'from.principals'],
    ]);
  });
});

describe('rule index', () => {
  it('keeps the rules a decision can touch constant as the policy grows', () => {
    const rules = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        name: `r${i}`,
        action: i % 10 === 0 ? 'deny' : 'allow',
        from: { principals: i % 3 === 0 ? [`spiffe://t/ns/n${i % 50}/*`] : [`spiffe://t/ns/n${i % 50}/sa/c${i}`] },
        to: { hosts: [`svc-${Math.floor(i / 5)}`], paths: [`/r${i}/**`] },
      }));
    const wildcard = [{ name: 'mesh-deny', action: 'deny', to: { paths: ['/admin/**'] } }, { name: 'mesh-any', action: 'allow', from: { principals: ['*'] }, when: [{ key: 'request.headers[x-debug]', values: ['1'] }] }];
    const stats = (n: number) => createPolicyEngine(policySchema.parse({ rules: [...wildcard, ...rules(n)] })).policy.index.stats;
    const small = stats(10);
    const large = stats(10_000);
    expect(large.residual).toBe(small.residual);
    expect(large.residual).toBe(1);
    expect(large.worstCandidates).toBeLessThanOrEqual(small.worstCandidates + 5);
    expect(large.worstCandidates).toBeLessThan(20);
  });
});

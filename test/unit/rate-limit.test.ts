import { describe, expect, it } from 'vitest';
import { ManualClock, type AuthzRequest } from '../../src/authz/index.js';
import { loadPolicyChainFromText, PolicyRuntime } from '../../src/filters/index.js';
import { heldKey, MemoryRateLimitStore } from '../../src/filters/rate-limit/memory-store.js';
import { rateLimit } from '../../src/filters/rate-limit/rate-limit-filter.js';
import { RateLimiter } from '../../src/filters/rate-limit/rate-limiter.js';
import { counterKey, WindowRateLimitStore } from '../../src/filters/rate-limit/window-store.js';
import { MemoryCounterStore } from '../../src/ratelimit/memory-counter-store.js';

const A = 'spiffe://example.org/ns/a/sa/a';
const B = 'spiffe://example.org/ns/b/sa/b';
const limit = (requestsPerSecond: number, burst: number, name = 'l') => ({ name, requestsPerSecond, burst });

describe('MemoryRateLimitStore', () => {
  it('lets a burst through, then refuses until tokens refill', () => {
    const clock = new ManualClock(0);
    const store = new MemoryRateLimitStore(clock);
    const charge = [{ limit: limit(2, 3), key: 'k' }];
    expect([store.take(charge), store.take(charge), store.take(charge)]).toEqual([undefined, undefined, undefined]);
    expect(store.take(charge)).toEqual({ limit: 'l', retryAfterSeconds: 1 });
    clock.advance(499);
    expect(store.take(charge)).toBeDefined();
    clock.advance(1);
    expect(store.take(charge)).toBeUndefined();
    expect(store.take(charge)).toBeDefined();
  });

  it('rounds retry-after up to whole seconds, at least 1', () => {
    const clock = new ManualClock(0);
    const store = new MemoryRateLimitStore(clock);
    const slow = [{ limit: limit(0.25, 1), key: 'k' }];
    expect(store.take(slow)).toBeUndefined();
    expect(store.take(slow)).toEqual({ limit: 'l', retryAfterSeconds: 4 });
    clock.advance(2500);
    expect(store.take(slow)).toEqual({ limit: 'l', retryAfterSeconds: 2 });
    const fast = [{ limit: limit(1000, 1, 'fast'), key: 'k' }];
    store.take(fast);
    expect(store.take(fast)).toEqual({ limit: 'fast', retryAfterSeconds: 1 });
  });

  it('keeps separate buckets per key and per limit', () => {
    const store = new MemoryRateLimitStore(new ManualClock(0));
    expect(store.take([{ limit: limit(1, 1), key: 'a' }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 1), key: 'b' }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 1, 'other'), key: 'a' }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 1), key: 'a' }])).toEqual({ limit: 'l', retryAfterSeconds: 1 });
  });

  it('charges all limits or none: a refused request costs no other limit a token', () => {
    const store = new MemoryRateLimitStore(new ManualClock(0));
    const roomy = { limit: limit(1, 5, 'roomy'), key: 'k' };
    const tight = { limit: limit(1, 1, 'tight'), key: 'k' };
    expect(store.take([roomy, tight])).toBeUndefined();
    for (let i = 0; i < 10; i++) expect(store.take([roomy, tight])).toEqual({ limit: 'tight', retryAfterSeconds: 1 });
    // roomy lost only the one token of the first, admitted, request.
    for (let i = 0; i < 4; i++) expect(store.take([roomy])).toBeUndefined();
    expect(store.take([roomy])).toBeDefined();
  });

  it('mints no tokens when the clock steps backwards', () => {
    const clock = new ManualClock(10_000);
    const store = new MemoryRateLimitStore(clock);
    const charge = [{ limit: limit(1, 1), key: 'k' }];
    store.take(charge);
    clock.advance(-5_000);
    expect(store.take(charge)).toBeDefined();
  });

  it('applies a changed rate and burst from the next request on', () => {
    const clock = new ManualClock(0);
    const store = new MemoryRateLimitStore(clock);
    for (let i = 0; i < 10; i++) store.take([{ limit: limit(1, 10), key: 'k' }]);
    clock.advance(10_000);
    // The bucket refilled to 10 under the old burst, then is capped at the new burst of 2.
    expect(store.take([{ limit: limit(1, 2), key: 'k' }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 2), key: 'k' }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 2), key: 'k' }])).toBeDefined();
  });

  it('never holds more than maxKeysPerLimit buckets, whatever the traffic', () => {
    const store = new MemoryRateLimitStore(new ManualClock(0), { maxKeysPerLimit: 100 });
    for (let i = 0; i < 10_000; i++) store.take([{ limit: limit(1, 5), key: `k${i}` }]);
    expect(store.size('l')).toBeLessThanOrEqual(100);
  });

  it('holds a long key (a header value a caller chose, up to the header cap) by its hash: bounded bytes per bucket, still one bucket per key', () => {
    const long = (i: number) => `header=${'x'.repeat(16_000)}${i}`;
    expect(heldKey(long(1)).length).toBeLessThanOrEqual(64);
    expect(heldKey(long(1))).not.toBe(heldKey(long(2)));
    expect(heldKey('spiffe://example.org/ns/a/sa/a')).toBe('spiffe://example.org/ns/a/sa/a');
    // A short key that looks like a held hash is hashed too.
    expect(heldKey(heldKey(long(1)))).not.toBe(heldKey(long(1)));
    const store = new MemoryRateLimitStore(new ManualClock(0));
    expect(store.take([{ limit: limit(1, 1), key: long(1) }])).toBeUndefined();
    expect(store.take([{ limit: limit(1, 1), key: long(1) }])).toEqual({ limit: 'l', retryAfterSeconds: 1 });
    expect(store.take([{ limit: limit(1, 1), key: long(2) }])).toBeUndefined();
  });

  it('forgets idle buckets once they have refilled, as traffic goes on', () => {
    const clock = new ManualClock(0);
    const store = new MemoryRateLimitStore(clock);
    for (let i = 0; i < 500; i++) store.take([{ limit: limit(10, 10), key: `idle-${i}` }]);
    expect(store.size('l')).toBe(500);
    clock.advance(2_000);
    for (let i = 0; i < 20_000; i++) store.take([{ limit: limit(10, 10), key: 'busy' }]);
    expect(store.size('l')).toBe(1);
  });

  it('keeps a busy bucket that has not refilled, and drops the tables of removed limits', () => {
    const clock = new ManualClock(0);
    const store = new MemoryRateLimitStore(clock);
    for (let i = 0; i < 3; i++) store.take([{ limit: limit(0.001, 3), key: 'busy' }]);
    for (let i = 0; i < 5_000; i++) store.take([{ limit: limit(1, 1e9, 'other'), key: 'x' }]);
    expect(store.take([{ limit: limit(0.001, 3), key: 'busy' }])).toBeDefined();
    store.retainOnly(['other']);
    expect(store.size('l')).toBe(0);
    expect(store.size('other')).toBe(1);
  });
});

describe("a policy file's rate limits", () => {
  const POLICY = `
rules:
  - { name: no-admin, action: deny, to: { paths: ["/admin/**"] } }
  - { name: everyone, action: allow }
rateLimits:
  - { name: per-caller, match: { principals: ["*"], paths: ["/api/**"] }, requestsPerSecond: 1, burst: 2, per: principal }
  - { name: per-ip, match: { methods: [POST] }, requestsPerSecond: 1, burst: 1, per: ip }
  - { name: health, match: { paths: ["/healthz"], hosts: [orders] }, requestsPerSecond: 1, burst: 1, per: global }
`;
  const req = (overrides: Partial<AuthzRequest> = {}): AuthzRequest => ({
    principal: A,
    sourceIp: '10.0.0.1',
    method: 'GET',
    host: 'orders',
    path: '/api/x',
    headers: {},
    ...overrides,
  });

  function engine(clock = new ManualClock(0)) {
    return { clock, engine: loadPolicyChainFromText(POLICY, { clock }).chain };
  }

  it('limits per principal: each caller has its own bucket', async () => {
    const { engine: e } = engine();
    expect((await e.decide(req())).kind).toBe('allow');
    expect((await e.decide(req())).kind).toBe('allow');
    expect(await e.decide(req())).toEqual({ kind: 'rate_limited', limit: 'per-caller', retryAfterSeconds: 1 });
    expect((await e.decide(req({ principal: B }))).kind).toBe('allow');
  });

  it('counts only requests the limit matches', async () => {
    const { engine: e } = engine();
    for (let i = 0; i < 5; i++) expect((await e.decide(req({ path: '/public' }))).kind).toBe('allow');
    for (let i = 0; i < 5; i++) expect((await e.decide(req({ principal: undefined }))).kind).toBe('allow');
  });

  it('limits per source IP and globally', async () => {
    const { engine: e } = engine();
    expect((await e.decide(req({ method: 'POST', path: '/p' }))).kind).toBe('allow');
    expect(await e.decide(req({ method: 'POST', path: '/p', principal: B }))).toMatchObject({ kind: 'rate_limited', limit: 'per-ip' });
    expect((await e.decide(req({ method: 'POST', path: '/p', sourceIp: '10.0.0.2' }))).kind).toBe('allow');
    expect((await e.decide(req({ path: '/healthz', principal: A }))).kind).toBe('allow');
    expect(await e.decide(req({ path: '/healthz', principal: B, sourceIp: '10.9.9.9' }))).toMatchObject({ kind: 'rate_limited', limit: 'health' });
  });

  it('never counts a denied request', async () => {
    const { engine: e } = engine();
    for (let i = 0; i < 10; i++) expect((await e.decide(req({ path: '/admin/api', method: 'POST' }))).kind).toBe('deny');
    expect((await e.decide(req({ method: 'POST', path: '/p' }))).kind).toBe('allow');
  });

  it('refills with time', async () => {
    const { engine: e, clock } = engine();
    await e.decide(req());
    await e.decide(req());
    expect((await e.decide(req())).kind).toBe('rate_limited');
    clock.advance(1000);
    expect((await e.decide(req())).kind).toBe('allow');
  });

  it('keeps counting across a reload that shares the runtime', async () => {
    const runtime = new PolicyRuntime({ clock: new ManualClock(0) });
    const first = loadPolicyChainFromText(POLICY, { runtime }).chain;
    await first.decide(req());
    await first.decide(req());
    const reloaded = loadPolicyChainFromText(POLICY.replace('name: everyone', 'name: everybody'), { runtime }).chain;
    expect(await reloaded.decide(req())).toMatchObject({ kind: 'rate_limited', limit: 'per-caller' });
    const fresh = loadPolicyChainFromText(POLICY, { clock: new ManualClock(0) }).chain;
    expect((await fresh.decide(req())).kind).toBe('allow');
  });
});

describe('the rateLimit filter\'s keys', () => {
  const limit = (per: string) => ({ name: 'l', requestsPerSecond: 1, burst: 1, per });
  const request = (overrides: Partial<AuthzRequest> = {}): AuthzRequest => ({ method: 'GET', host: 'orders', path: '/', headers: {}, sourceIp: '10.0.0.1', ...overrides });
  const limiter = (per: string) => new RateLimiter([limit(per)], new MemoryRateLimitStore(new ManualClock(0)));

  it('counts per API key name, per header value and per claim, each caller in a bucket of its own', () => {
    const cases: Array<[string, (v: string) => Partial<AuthzRequest>]> = [
      ['apiKey', (v) => ({ principal: `apikey:${v}` })],
      ['header:x-tenant', (v) => ({ headers: { 'x-tenant': v } })],
      ['claim:org.id', (v) => ({ claims: { org: { id: v } } })],
    ];
    for (const [per, of] of cases) {
      const l = limiter(per);
      expect(l.take(request(of('a'))), per).toBeUndefined();
      expect(l.take(request(of('a'))), per).toMatchObject({ limit: 'l' });
      expect(l.take(request(of('b'))), per).toBeUndefined();
    }
  });

  it('counts a request without the keyed value by its address, and no value a caller sends spends an address\'s bucket', () => {
    const l = limiter('header:x-tenant');
    expect(l.take(request())).toBeUndefined();
    expect(l.take(request())).toMatchObject({ limit: 'l' });
    expect(l.take(request({ sourceIp: '10.0.0.2' }))).toBeUndefined();
    // A caller naming the first one's address as its tenant has a bucket of its own.
    expect(l.take(request({ sourceIp: '10.0.0.3', headers: { 'x-tenant': '10.0.0.1' } }))).toBeUndefined();
    expect(l.take(request({ sourceIp: '10.0.0.3', headers: { 'x-tenant': 'ip=10.0.0.1' } }))).toBeUndefined();
    const byKey = limiter('apiKey');
    expect(byKey.take(request({ principal: 'spiffe://example.org/ns/a/sa/a' }))).toBeUndefined();
    expect(byKey.take(request({ principal: 'spiffe://example.org/ns/b/sa/b' }))).toMatchObject({ limit: 'l' });
  });
});

describe('rateLimit limits per unit (quotas)', () => {
  it('in memory: a bucket of requestsPerUnit refilled over the unit', () => {
    const parsed = rateLimit.settings.parse({ limits: [{ name: 'q', requestsPerUnit: 1000, unit: 'day', per: 'principal' }] });
    expect(parsed.limits[0]).toMatchObject({ requestsPerSecond: 1000 / 86_400, burst: 1000, window: { requests: 1000, seconds: 86_400 } });
  });

  it('in fixed windows of a counter store: N per window, then refused until the window ends; each key hashed', async () => {
    let now = 30 * 86_400 * 700 + 5;
    const store = new WindowRateLimitStore(new MemoryCounterStore(() => now), new Map([['q', { requests: 2, seconds: 30 * 86_400 }]]), 'deny');
    const charge = [{ limit: limit(1, 1, 'q'), key: A }];
    expect([await store.take(charge), await store.take(charge)]).toEqual([undefined, undefined]);
    expect(await store.take(charge)).toEqual({ limit: 'q', retryAfterSeconds: 30 * 86_400 - 5 });
    expect(await store.take([{ limit: limit(1, 1, 'q'), key: B }])).toBeUndefined();
    now += 30 * 86_400;
    expect(await store.take(charge)).toBeUndefined();
    expect(counterKey('q', 60, A)).toMatch(/^meshward:rl:q:60:[A-Za-z0-9_-]{43}_$/);
  });
});

import { describe, expect, it } from 'vitest';
import { decideRateLimit } from '../../src/ratelimit/decide.js';
import { MemoryCounterStore } from '../../src/ratelimit/memory-counter-store.js';
import { RateLimitConfig } from '../../src/ratelimit/rate-limit-config.js';
import { parseRedisUrl } from '../../src/ratelimit/redis-url.js';
import { fixedWindow } from '../../src/ratelimit/time-unit.js';

const config = RateLimitConfig.parse('domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 2 }\n', 'limits.yaml');

describe('fixed windows', () => {
  it('start at multiples of their length since the epoch and say how long is left', () => {
    expect(fixedWindow(120, 60)).toEqual({ start: 120, resetSeconds: 60 });
    expect(fixedWindow(179.9, 60)).toEqual({ start: 120, resetSeconds: 1 });
    expect(fixedWindow(86_400 * 30 + 5, 86_400 * 30)).toEqual({ start: 86_400 * 30, resetSeconds: 86_400 * 30 - 5 });
  });

  it('count from zero again when the window ends, in the memory store as in Redis', async () => {
    let now = 60 * 16_666_666 + 20; // 20 s into a minute
    const store = new MemoryCounterStore(() => now);
    const decide = () => decideRateLimit({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }], hitsAddend: 0 }, { config, store, failureMode: 'allow', clock: () => now });
    const first = await decide();
    expect(first.statuses[0]).toMatchObject({ code: 'OK', limitRemaining: 1, durationUntilResetSeconds: 40 });
    await decide();
    now += 39;
    expect((await decide()).statuses[0]).toMatchObject({ code: 'OVER_LIMIT', limitRemaining: 0, durationUntilResetSeconds: 1 });
    now += 1;
    expect((await decide()).statuses[0]).toMatchObject({ code: 'OK', limitRemaining: 1, durationUntilResetSeconds: 60 });
  });
});

describe('Redis URLs', () => {
  it.each([
    ['redis://127.0.0.1:6380', { tls: false, cluster: false, nodes: [{ host: '127.0.0.1', port: 6380 }], db: 0 }],
    ['rediss://cache.internal/2', { tls: true, cluster: false, nodes: [{ host: 'cache.internal', port: 6379 }], db: 2 }],
    ['redis://meshward@[::1]:7000', { username: 'meshward', nodes: [{ host: '::1', port: 7000 }] }],
    ['redis://a:7000,b:7001?cluster=true', { cluster: true, nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }] }],
  ])('reads %s', (url, expected) => {
    const parsed = parseRedisUrl(url);
    expect(parsed.ok && parsed.value).toMatchObject(expected);
  });

  it.each([
    ['redis://user:s3cret@host:6379', '"redis://user:[redacted]@host:6379": has a password in it; give it as env:NAME or file:PATH instead'],
    ['http://host:6379', 'is not redis://HOST:PORT or rediss://HOST:PORT (TLS)'],
    ['redis://host:99999', '"host:99999" is not HOST:PORT'],
    ['redis://a:1,b:2', 'several hosts are the seed nodes of a Redis Cluster: add ?cluster=true'],
    ['redis://a:1/3?cluster=true', 'a Redis Cluster has only database 0'],
    ['redis://a:1?tls=yes', 'unknown parameter "tls" (known: cluster)'],
  ])('refuses %s', (url, message) => {
    const parsed = parseRedisUrl(url);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain(message);
      expect(parsed.error).not.toContain('s3cret');
    }
  });
});

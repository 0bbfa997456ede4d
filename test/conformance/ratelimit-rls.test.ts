// `meshward ratelimit` as Envoy sees it: a real child process counting in a real redis-server, called by a client
// built from the official Envoy protos (rls-client.ts). Each test counts under its own descriptor values, so that
// the tests share one server without sharing counters.
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startCli, stopChild } from '../helpers/cli.js';
import { RedisServer } from '../helpers/redis-server.js';
import { healthStatus, reflect } from './envoy-client.js';
import { rateLimitClient, shouldRateLimit, type Entries, type RateLimitResponse } from './rls-client.js';

const CONFIG = resolve(REPO_ROOT, 'test/fixtures/ratelimit/conformance.yaml');
const LISTENING = /^.*"msg":"listening".*$/m;
const YEAR_SECONDS = 365 * 86_400;
const UINT32_MAX = 4_294_967_295;

describe('meshward ratelimit, called with the official Envoy protos', () => {
  let redis: RedisServer;
  let child: ChildProcess;
  let address: string;
  let adminAddress: string;
  let client: Client;
  const domain = 'conformance';
  const call = (descriptors: Entries[], extra: { hits_addend?: number; domain?: string } = {}) =>
    shouldRateLimit(client, { domain: extra.domain ?? domain, descriptors, ...(extra.hits_addend === undefined ? {} : { hits_addend: extra.hits_addend }) });
  const codes = (responses: RateLimitResponse[]) => responses.map((r) => r.overall_code);

  beforeAll(async () => {
    redis = await RedisServer.start();
    // A 2 s Redis timeout, not the default 50 ms: on a loaded machine a count given up on would make exact tests flaky.
    const started = await startCli(['ratelimit', '--config', CONFIG, '--listen', '127.0.0.1:0', '--redis', redis.url, '--redis-timeout', '2s', '--admin', '127.0.0.1:0'], LISTENING);
    child = started.child;
    const line = JSON.parse(started.match[0]) as { address: string; admin: string; store: string };
    address = line.address;
    adminAddress = line.admin;
    expect(line.store).toBe(redis.url);
    client = rateLimitClient(address);
  });
  afterAll(async () => {
    client?.close();
    if (child) expect(await stopChild(child)).toBe(0);
    await redis?.close();
  });

  it('allows requests_per_unit calls, then answers OVER_LIMIT with the limit, the remaining count and the reset', async () => {
    const responses: RateLimitResponse[] = [];
    for (let i = 0; i < 4; i++) responses.push(await call([{ client: 'a' }]));
    expect(codes(responses)).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
    expect(responses.map((r) => r.statuses[0]!.limit_remaining)).toEqual([2, 1, 0, 0]);
    const [first] = responses[0]!.statuses;
    expect(first!.code).toBe('OK');
    expect(first!.current_limit).toMatchObject({ requests_per_unit: 3, unit: 'YEAR' });
    const reset = Number(first!.duration_until_reset!.seconds);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(YEAR_SECONDS);
    // The headers come with an OVER_LIMIT answer only.
    expect(responses[2]!.response_headers_to_add).toEqual([]);
    const headers = Object.fromEntries(responses[3]!.response_headers_to_add.map((h) => [h.key, h.value]));
    expect(headers).toEqual({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': responses[3]!.statuses[0]!.duration_until_reset!.seconds });
  });

  it('counts in Redis as envoyproxy/ratelimit does: one key per domain, descriptor and window start, expiring with the window', async () => {
    await call([{ client: 'keyed' }]);
    const [key] = (await redis.cli('--scan', '--pattern', 'conformance_client_keyed_*')).split('\n');
    const windowStart = Number(key!.slice('conformance_client_keyed_'.length));
    expect(windowStart % YEAR_SECONDS).toBe(0);
    expect(await redis.cli('GET', key!)).toBe('1');
    const ttl = Number(await redis.cli('TTL', key!));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(YEAR_SECONDS);
  });

  it('counts every value of a value-less key apart, and matches key and value before key alone', async () => {
    expect(codes([await call([{ client: 'b' }]), await call([{ client: 'c' }])])).toEqual(['OK', 'OK']);
    const vip = [await call([{ client: 'vip' }]), await call([{ client: 'vip' }])];
    expect(codes(vip)).toEqual(['OK', 'OVER_LIMIT']);
    expect(vip[0]!.statuses[0]!.current_limit?.requests_per_unit).toBe(1);
  });

  it('honours hits_addend: the count grows by it, and a call that would pass the limit is OVER_LIMIT', async () => {
    const first = await call([{ client: 'bulk' }], { hits_addend: 2 });
    expect(first.overall_code).toBe('OK');
    expect(first.statuses[0]!.limit_remaining).toBe(1);
    expect((await call([{ client: 'bulk' }], { hits_addend: 2 })).overall_code).toBe('OVER_LIMIT');
    expect(await redis.cli('--scan', '--pattern', 'conformance_client_bulk_*').then((k) => redis.cli('GET', k))).toBe('4');
  });

  it('matches nested descriptors only at their depth', async () => {
    const nested = [['tenant', 'acme'], ['user', 'u1']] as Array<[string, string]>;
    expect(codes([await call([nested]), await call([nested]), await call([nested])])).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    // One entry stops above the limit; three go past it: neither is limited.
    const shallow = await call([{ tenant: 'acme' }]);
    expect(shallow.statuses[0]).toMatchObject({ code: 'OK', current_limit: null, limit_remaining: 0 });
    const deep = await call([[...nested, ['extra', 'x']]]);
    expect(deep.statuses[0]).toMatchObject({ code: 'OK', current_limit: null });
  });

  it('answers unlimited descriptors OK with limit_remaining 2^32-1, without counting them', async () => {
    const response = await call([{ path: '/health' }]);
    expect(response.statuses[0]).toMatchObject({ code: 'OK', current_limit: null, limit_remaining: UINT32_MAX });
    expect(await redis.cli('--scan', '--pattern', 'conformance_path_/health_*')).toBe('');
  });

  it('lets shadow_mode limits through, reporting them OK, and counts the overrides in /metrics', async () => {
    const responses = [await call([{ path: '/search' }]), await call([{ path: '/search' }]), await call([{ path: '/search' }])];
    expect(codes(responses)).toEqual(['OK', 'OK', 'OK']);
    expect(responses[2]!.statuses[0]).toMatchObject({ code: 'OK', limit_remaining: 0 });
    expect(await redis.cli('--scan', '--pattern', 'conformance_path_/search_*').then((k) => redis.cli('GET', k))).toBe('3');
    const metrics = await (await fetch(`http://${adminAddress}/metrics`)).text();
    expect(metrics).toMatch(/^meshward_ratelimit_shadow_mode_total 2$/m);
  });

  it('judges every descriptor of a call: OVER_LIMIT when any one is, with a status for each', async () => {
    await call([{ client: 'multi-1' }], { hits_addend: 3 });
    const response = await call([{ client: 'multi-2' }, { client: 'multi-1' }, { free: 'x' }]);
    expect(response.overall_code).toBe('OVER_LIMIT');
    expect(response.statuses.map((s) => s.code)).toEqual(['OK', 'OVER_LIMIT', 'OK']);
    expect(response.statuses[2]!.current_limit).toBeNull();
  });

  it('drops a limit that another matched limit replaces', async () => {
    const both: Array<Record<string, string>> = [{ plan: 'p1' }, { tier: 'gold' }];
    const responses = [await call(both), await call(both)];
    expect(codes(responses)).toEqual(['OK', 'OK']);
    expect(responses[1]!.statuses[0]).toMatchObject({ code: 'OK', current_limit: null });
    expect(responses[1]!.statuses[1]!.limit_remaining).toBe(3);
    // Alone, the replaced limit applies.
    expect(codes([await call([{ plan: 'p2' }]), await call([{ plan: 'p2' }])])).toEqual(['OK', 'OVER_LIMIT']);
  });

  it('matches a value ending in * as a prefix', async () => {
    const response = await call([{ route: 'minute-report' }]);
    expect(response.statuses[0]!.current_limit).toMatchObject({ requests_per_unit: 1000, unit: 'MINUTE' });
    expect(Number(response.statuses[0]!.duration_until_reset!.seconds)).toBeLessThanOrEqual(60);
  });

  it('uses the caller\'s RateLimitOverride instead of the configured limit', async () => {
    const overridden = (i: number) => shouldRateLimit(client, { domain, descriptors: [{ client: `override-${i}` }], overrides: { 0: { requests_per_unit: 7, unit: 'HOUR' } } });
    const response = await overridden(1);
    expect(response.statuses[0]).toMatchObject({ code: 'OK', current_limit: { requests_per_unit: 7, unit: 'HOUR' }, limit_remaining: 6 });
  });

  it('keeps domains apart, and answers OK without a limit in a domain it does not know', async () => {
    expect(codes([await call([{ client: 'dom' }], { domain: 'other' }), await call([{ client: 'dom' }], { domain: 'other' })])).toEqual(['OK', 'OVER_LIMIT']);
    const unknown = await call([{ client: 'dom' }], { domain: 'nobody' });
    expect(unknown.overall_code).toBe('OK');
    expect(unknown.statuses[0]!.current_limit).toBeNull();
  });

  it.each([
    ['an empty domain', { domain: '', descriptors: [{ client: 'x' }] }, 'rate limit domain must not be empty'],
    ['no descriptors', { domain, descriptors: [] }, 'rate limit descriptor list must not be empty'],
  ])('refuses %s with INVALID_ARGUMENT', async (_what, request, message) => {
    await expect(shouldRateLimit(client, request)).rejects.toMatchObject({ code: 3, details: message });
  });

  it('serves health and reflection on the same port', async () => {
    expect(await healthStatus(address, 'envoy.service.ratelimit.v3.RateLimitService')).toBe('SERVING');
    const listed = await reflect(address, { list_services: '' });
    expect(listed.list_services_response?.service.map((s) => s.name)).toContain('envoy.service.ratelimit.v3.RateLimitService');
  });
});

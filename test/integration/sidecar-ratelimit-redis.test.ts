// The sidecar's rateLimit filter counting in a real redis-server (`store: redis://`): replicas of one service share
// one limit, a quota's window, Redis going away and coming back. Limits are per month so that no window ends
// mid-test.
import http from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, outputContaining, runSidecar, startHttpApp, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const { dir, cleanup } = tempDir('meshward-sidecar-redis-');
let mesh: Mesh;
let app: http.Server;
let appUrl: string;
let redis: RedisServer;
const started: RunningSidecar[] = [];
let names = 0;

beforeAll(async () => {
  ({ server: app, url: appUrl } = await startHttpApp((_req, res) => res.end('ok')));
  mesh = await makeMesh(dir);
  await mesh.issue('orders', ORDERS_ID);
  await mesh.issue('web', WEB_ID);
  writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
  redis = await RedisServer.start();
}, 60_000);

afterEach(async () => {
  for (const sidecar of started.splice(0)) expect(await sidecar.stop()).toBe(0);
});

afterAll(async () => {
  await redis?.close();
  app?.close();
  cleanup();
});

/** The rateLimit settings of an orders replica; the Redis timeout is 2 s (not 50 ms) unless given, so that a loaded machine does not make an exact count flaky. */
const onRedis = (limits: object[], extra: object = {}) => ({ rateLimit: { store: redis.url, timeout: '2s', limits, ...extra } });

function ordersConfig(rateLimit: object): object {
  return {
    trustDomain: TD,
    identity: { files: { cert: join(dir, 'orders.pem'), key: join(dir, 'orders.key'), bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: appUrl, policy: join(dir, 'policy.yaml'), filters: [rateLimit] },
    admin: { listen: '127.0.0.1:0' },
  };
}

async function start(config: object): Promise<RunningSidecar> {
  const sidecar = await runSidecar(dir, `sidecar-${++names}`, config);
  started.push(sidecar);
  return sidecar;
}

/** Replicas of orders with the same rateLimit settings, and web with one outbound route to each (`replica-0`, ...). */
async function replicas(count: number, rateLimit: object): Promise<{ web: RunningSidecar; orders: RunningSidecar[] }> {
  const orders: RunningSidecar[] = [];
  for (let i = 0; i < count; i++) orders.push(await start(ordersConfig(rateLimit)));
  const web = await start({
    trustDomain: TD,
    identity: { files: { cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: mesh.bundle } },
    outbound: { listen: '127.0.0.1:0', routes: orders.map((o, i) => ({ host: `replica-${i}`, address: o.inbound, spiffeId: ORDERS_ID })) },
    admin: { listen: '127.0.0.1:0' },
  });
  return { web, orders };
}

const call = (web: RunningSidecar, replica: number, headers: Record<string, string> = {}) =>
  httpRequest(web.outbound!, '/api/orders/1', { headers: { host: `replica-${replica}`, ...headers } });
const metric = async (sidecar: RunningSidecar, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`http://${sidecar.admin}/metrics`)).text())?.[1]);

describe('rateLimit with store: redis://', () => {
  it('two replicas of orders enforce one limit exactly: N allowed across both, then 429 with retry-after from the window', async () => {
    const limit = { name: 'per-caller', requestsPerUnit: 6, unit: 'month', per: 'principal' };
    const { web } = await replicas(2, onRedis([limit]));
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(web, i % 2)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);

    const refused = await call(web, 0);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'rate_limited', limit: 'per-caller' });
    const retryAfter = Number(refused.headers['retry-after']);
    const now = Math.floor(Date.now() / 1000);
    // The month window (30 days since the epoch, as envoyproxy/ratelimit cuts them) ends then.
    expect(Math.abs(retryAfter - (30 * 86_400 - (now % (30 * 86_400))))).toBeLessThanOrEqual(2);
  });

  it('a burst at once across both replicas lets exactly N through; keys hold a hash, never the value counted', async () => {
    const secret = 'tenant-secret-value-that-must-not-reach-redis';
    const { web } = await replicas(2, onRedis([{ name: 'per-tenant', requestsPerUnit: 5, unit: 'day', per: 'header:x-tenant' }]));
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => call(web, i % 2, { 'x-tenant': secret })));
    expect(burst.filter((a) => a.status === 200)).toHaveLength(5);
    expect(burst.filter((a) => a.status === 429)).toHaveLength(15);
    const keys = (await redis.cli('--scan', '--pattern', 'meshward:rl:per-tenant:*')).split('\n');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^meshward:rl:per-tenant:86400:[A-Za-z0-9_-]{43}_\d+$/);
    expect(keys[0]).not.toContain('secret');
    expect(await redis.cli('GET', keys[0]!)).toBe('20');
  });

  it('Redis down: failureMode allow lets requests through, deny answers 503, both warn and count the error; counting resumes when Redis is back', async () => {
    const limit = (name: string) => [{ name, requestsPerUnit: 2, unit: 'month', per: 'principal' }];
    const { web: webAllow, orders: [allow] } = await replicas(1, onRedis(limit('allow-limit')));
    const deny = await start(ordersConfig(onRedis(limit('deny-limit'), { failureMode: 'deny' })));
    const webDeny = await start({
      trustDomain: TD,
      identity: { files: { cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: mesh.bundle } },
      outbound: { listen: '127.0.0.1:0', routes: [{ host: 'replica-0', address: deny.inbound, spiffeId: ORDERS_ID }] },
      admin: { listen: '127.0.0.1:0' },
    });
    expect((await call(webAllow, 0)).status).toBe(200);
    expect(await metric(allow!, 'meshward_ratelimit_store_errors_total')).toBe(0);

    await redis.stop();
    // Over the limit of 2, but nothing can be counted: allow lets every one through.
    for (let i = 0; i < 3; i++) expect((await call(webAllow, 0)).status).toBe(200);
    const refused = await call(webDeny, 0);
    expect(refused.status).toBe(503);
    for (const sidecar of [allow!, deny]) {
      expect(await metric(sidecar, 'meshward_ratelimit_store_errors_total')).toBeGreaterThanOrEqual(1);
      await outputContaining(sidecar, 'rate-limit store failed; the failure mode decides until Redis answers again');
    }

    await redis.resume();
    // The Redis is a new, empty one: once a replica has reconnected it counts from zero, so a 429 comes within three
    // requests of that (an allowed request before the reconnect is not counted; a 503 from deny means not yet).
    await until('deny to count again', () => call(webDeny, 0).then((a) => a.status), (s) => s === 200);
    expect([(await call(webDeny, 0)).status, (await call(webDeny, 0)).status]).toEqual([200, 429]);
    await until('allow to count again', () => call(webAllow, 0).then((a) => a.status), (s) => s === 429);
    await outputContaining(allow!, 'Redis answers again; counting resumed');
  });

  it('refuses settings a Redis store cannot count, naming the path', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, JSON.stringify(ordersConfig({
      rateLimit: { store: 'redis://user:hunter2@127.0.0.1:1', limits: [{ name: 'a', requestsPerSecond: 5 }, { name: 'b', requestsPerUnit: 5 }], failureMode: 'maybe' },
    })));
    const refused = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('inbound.filters[0].rateLimit.store: must be memory or a Redis URL: "redis://user:[redacted]@127.0.0.1:1": has a password in it');
    expect(refused.stderr).toContain('inbound.filters[0].rateLimit.limits[1].unit: requestsPerUnit and unit go together');
    expect(refused.stderr).toContain('inbound.filters[0].rateLimit.failureMode: must be allow or deny');
    expect(refused.stderr).not.toContain('hunter2');

    writeFileSync(file, JSON.stringify(ordersConfig({ rateLimit: { store: redis.url, limits: [{ name: 'a', requestsPerSecond: 5 }] } })));
    const bucket = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(bucket.stderr).toContain('inbound.filters[0].rateLimit.limits[0]: a Redis store counts in fixed windows: give requestsPerUnit and unit instead of requestsPerSecond');
    writeFileSync(file, JSON.stringify(ordersConfig({ rateLimit: { timeout: '1s', limits: [{ name: 'a', requestsPerUnit: 5, unit: 'day' }] } })));
    const memory = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(memory.stderr).toContain('inbound.filters[0].rateLimit.timeout: is for a Redis store (store: redis://HOST:PORT)');
  });
});

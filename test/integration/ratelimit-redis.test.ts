// `meshward ratelimit` processes sharing real redis-servers: one limit across replicas, a Redis Cluster, Redis
// going away and coming back, TLS with a password, config reloads. Counted limits use `year` so that no window
// ends mid-test.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { OpensslPki } from '../helpers/openssl-pki.js';
import { RedisCluster, RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';
import { rateLimitClient, shouldRateLimit, type RateLimitResponse } from '../conformance/rls-client.js';

const LISTENING = /^.*"msg":"listening".*$/m;

interface Running {
  child: ChildProcess;
  client: Client;
  admin: string;
  output: () => string;
}

const { dir, cleanup } = tempDir('meshward-ratelimit-');
const started: Running[] = [];
let configs = 0;

/** A config file with one domain `d` whose `client` key allows `limit` calls a year per value. */
function configFile(limit: number, extra = ''): string {
  const file = join(dir, `ratelimit-${++configs}.yaml`);
  writeFileSync(file, `domain: d\ndescriptors:\n  - key: client\n    rate_limit:\n      unit: year\n      requests_per_unit: ${limit}\n${extra}`);
  return file;
}

/**
 * Starts `meshward ratelimit`. Unless a test sets its own, the Redis timeout is 2 s rather than 50 ms: on a loaded
 * machine a round trip can take longer than 50 ms, and a count given up on would make an exact test flaky.
 */
async function startRateLimit(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const timeout = args.includes('--redis') && !args.includes('--redis-timeout') ? ['--redis-timeout', '2s'] : [];
  const { child, match, output } = await startCli(['ratelimit', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...timeout, ...args], LISTENING, { env });
  const line = JSON.parse(match[0]) as { address: string; admin: string };
  const running = { child, client: rateLimitClient(line.address), admin: line.admin, output };
  started.push(running);
  return running;
}

const hit = (server: Running, client: string, extra: { hits_addend?: number } = {}) => shouldRateLimit(server.client, { domain: 'd', descriptors: [{ client }], ...extra });
const codes = (responses: RateLimitResponse[]) => responses.map((r) => r.overall_code);
const metric = async (server: Running, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`http://${server.admin}/metrics`)).text())?.[1]);
const logged = (server: Running, msg: string) =>
  server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);

afterEach(async () => {
  for (const server of started.splice(0)) {
    server.client.close();
    expect(await stopChild(server.child)).toBe(0);
  }
});
afterAll(() => cleanup());

describe('one Redis, several meshward ratelimit processes', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('two processes enforce one limit exactly: N allowed across both, then OVER_LIMIT from either', async () => {
    const config = configFile(10);
    const [a, b] = [await startRateLimit(['--config', config, '--redis', redis.url]), await startRateLimit(['--config', config, '--redis', redis.url])];
    const sequential: RateLimitResponse[] = [];
    for (let i = 0; i < 14; i++) sequential.push(await hit(i % 2 === 0 ? a! : b!, 'one'));
    expect(codes(sequential)).toEqual([...Array<string>(10).fill('OK'), ...Array<string>(4).fill('OVER_LIMIT')]);

    // A burst at once, half through each: INCRBY is atomic in Redis, so exactly N get through.
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => hit(i % 2 === 0 ? a! : b!, 'burst')));
    expect(burst.filter((r) => r.overall_code === 'OK')).toHaveLength(10);
    expect(await redis.cli('--scan', '--pattern', 'd_client_burst_*').then((k) => redis.cli('GET', k))).toBe('40');
  });

  it('without --redis counts in memory, and says so at start', async () => {
    const server = await startRateLimit(['--config', configFile(1)]);
    expect(codes([await hit(server, 'm'), await hit(server, 'm')])).toEqual(['OK', 'OVER_LIMIT']);
    expect(server.output()).toMatch(/"store":"memory"/);
    expect(logged(server, "no --redis: counting in this process's memory; every replica of this service counts alone")).toHaveLength(1);
  });
});

describe('Redis going away and coming back', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('failureMode allow lets calls through with a warning and the metric, deny refuses them; both count again when Redis is back, without a restart', async () => {
    const config = configFile(3);
    const allow = await startRateLimit(['--config', config, '--redis', redis.url]);
    const deny = await startRateLimit(['--config', config, '--redis', redis.url, '--failure-mode', 'deny']);
    expect((await hit(allow, 'before')).statuses[0]!.limit_remaining).toBe(2);
    expect(await metric(allow, 'meshward_ratelimit_store_errors_total')).toBe(0);

    await redis.stop();
    const down = await hit(allow, 'down');
    expect(down.overall_code).toBe('OK');
    // Nothing was counted: the whole limit is reported as remaining.
    expect(down.statuses[0]).toMatchObject({ code: 'OK', current_limit: { requests_per_unit: 3 }, limit_remaining: 3 });
    const refused = await hit(deny, 'down');
    expect(refused.overall_code).toBe('OVER_LIMIT');
    expect(refused.response_headers_to_add.map((h) => h.key)).toEqual(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']);
    for (const server of [allow, deny]) {
      expect(await metric(server, 'meshward_ratelimit_store_errors_total')).toBeGreaterThanOrEqual(1);
      await until('the store failure to be logged', () => Promise.resolve(logged(server, 'rate-limit store failed; the failure mode decides until Redis answers again')), (l) => l.length >= 1);
    }

    await redis.resume();
    // Counted again: a first hit on a new key leaves 2 of 3. Each attempt takes a new key, since an attempt that
    // timed out may still have been counted.
    let attempt = 0;
    for (const server of [allow, deny]) {
      const answer = await until('counting to resume', () => hit(server, `after-${attempt++}`), (r) => r.statuses[0]!.limit_remaining === 2);
      expect(answer.overall_code).toBe('OK');
      await until('the recovery to be logged', () => Promise.resolve(logged(server, 'Redis answers again; counting resumed')), (l) => l.length === 1);
    }
  });

  it('a Redis that stops answering (frozen) is given up on after --redis-timeout: the call is answered, not left hanging', async () => {
    const server = await startRateLimit(['--config', configFile(3), '--redis', redis.url, '--redis-timeout', '1s']);
    expect((await hit(server, 'frozen')).statuses[0]!.limit_remaining).toBe(2);
    redis.freeze();
    try {
      // rls-client's deadline is 5 s: without the timeout, this call would wait for Redis to thaw.
      const answer = await hit(server, 'frozen');
      expect(answer.statuses[0]).toMatchObject({ code: 'OK', limit_remaining: 3 });
      // The warning crosses a pipe and may come after the answer.
      const failures = await until('the store failure to be logged', () => Promise.resolve(logged(server, 'rate-limit store failed; the failure mode decides until Redis answers again')), (l) => l.length > 0);
      expect(failures[0]?.err).toMatch(/no answer within 1000 ms/);
    } finally {
      redis.thaw();
    }
  });
});

describe('a Redis Cluster of three masters', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('spreads keys over the nodes and holds every limit', async () => {
    const server = await startRateLimit(['--config', configFile(2), '--redis', cluster.url]);
    expect(server.output()).toMatch(/"cluster":true/);
    // Values as different as real ones: CRC16 slots of keys that differ in one character cluster together.
    const values = Array.from({ length: 60 }, (_, i) => createHash('sha256').update(String(i)).digest('hex').slice(0, 12));
    for (const value of values) {
      expect(codes([await hit(server, value), await hit(server, value), await hit(server, value)])).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    }
    const perNode = await Promise.all(cluster.nodes.map(async (node) => Number(await node.cli('DBSIZE'))));
    expect(perNode.reduce((a, b) => a + b)).toBe(values.length);
    for (const keys of perNode) expect(keys).toBeGreaterThan(0);
  });
});

describe('rediss:// with a password', () => {
  const pki = new OpensslPki(dir);
  let redis: RedisServer;
  const password = 'correct-horse-battery-staple';
  let root: ReturnType<OpensslPki['root']>;
  beforeAll(async () => {
    root = pki.root('redis-root');
    const key = pki.key('redis-server');
    const cert = pki.cert('redis-server', root, key, ['basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1']);
    redis = await RedisServer.start({ tls: { cert, key, ca: root.cert }, args: ['--requirepass', password] });
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('counts over TLS with the password from file: or env:, and never logs it', async () => {
    const passwordFile = join(dir, 'redis-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const url = `rediss://127.0.0.1:${redis.port}`;
    const config = configFile(1);
    const fromFile = await startRateLimit(['--config', config, '--redis', url, '--redis-password', `file:${passwordFile}`, '--redis-ca', root.cert]);
    // Only Redis can have counted this: the failure mode (allow) would never answer OVER_LIMIT.
    expect(codes([await hit(fromFile, 'tls'), await hit(fromFile, 'tls')])).toEqual(['OK', 'OVER_LIMIT']);
    const fromEnv = await startRateLimit(['--config', config, '--redis', url, '--redis-password', 'env:REDIS_PASSWORD', '--redis-ca', root.cert], { REDIS_PASSWORD: password, MESHWARD_LOG_LEVEL: 'debug' });
    expect((await hit(fromEnv, 'tls')).overall_code).toBe('OVER_LIMIT');
    for (const server of [fromFile, fromEnv]) expect(server.output()).not.toContain(password);
  });

  it('refuses a password in the URL, without printing it', async () => {
    const result = await runCli(['ratelimit', '--config', configFile(1), '--listen', '127.0.0.1:0', '--redis', `rediss://default:${password}@127.0.0.1:${redis.port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has a password in it; give it as env:NAME or file:PATH');
    expect(result.stderr).not.toContain(password);
  });

  it('refuses an unset password variable at start, naming it', async () => {
    const result = await runCli(['ratelimit', '--config', configFile(1), '--listen', '127.0.0.1:0', '--redis', `rediss://127.0.0.1:${redis.port}`, '--redis-password', 'env:NO_SUCH_VARIABLE']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Redis password (env:NO_SUCH_VARIABLE): the environment variable NO_SUCH_VARIABLE is not set');
  });
});

describe('config reload', () => {
  it('puts a valid change in force on a file change, keeps the last good config on an invalid one, and reloads on SIGHUP', async () => {
    const file = configFile(1);
    const server = await startRateLimit(['--config', file]);
    expect(codes([await hit(server, 'r0'), await hit(server, 'r0')])).toEqual(['OK', 'OVER_LIMIT']);

    writeFileSync(file, 'domain: d\ndescriptors:\n  - key: client\n    rate_limit:\n      unit: year\n      requests_per_unit: 5\n');
    await until('the new limit', () => hit(server, 'r1'), (r) => r.statuses[0]!.current_limit?.requests_per_unit === 5);
    expect(await metric(server, 'meshward_ratelimit_config_reloads_total')).toBe(1);

    writeFileSync(file, 'domain: d\ndescriptors:\n  - key: client\n    rate_limit:\n      unit: fortnight\n      requests_per_unit: 9\n');
    const [rejected] = await until('the rejection', () => Promise.resolve(logged(server, 'rate-limit config rejected; the last good rate-limit config stays in force')), (l) => l.length > 0);
    expect(rejected!.error).toBe(`${file}: descriptors[0].rate_limit.unit: "fortnight" is not a unit; use one of second, minute, hour, day, month, year`);
    expect((await hit(server, 'r2')).statuses[0]!.current_limit?.requests_per_unit).toBe(5);
    expect(await metric(server, 'meshward_ratelimit_config_reload_failures_total')).toBe(1);

    writeFileSync(file, 'domain: d\ndescriptors:\n  - key: client\n    rate_limit:\n      unit: year\n      requests_per_unit: 7\n');
    await until('the watched change', () => hit(server, 'r3'), (r) => r.statuses[0]!.current_limit?.requests_per_unit === 7);
    // SIGHUP reloads even a file that has not changed since.
    server.child.kill('SIGHUP');
    await until('the SIGHUP reload', () => Promise.resolve(logged(server, 'rate-limit config reloaded').filter((l) => l.trigger === 'SIGHUP')), (l) => l.length === 1);
  });

  it('refuses an invalid config at start, naming the file, the path and the reason', async () => {
    const file = configFile(1, '  - key: client\n    rate_limit:\n      unit: year\n      requests_per_unit: 2\n');
    const result = await runCli(['ratelimit', '--config', file, '--listen', '127.0.0.1:0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: descriptors[1]: a second entry for key "client" without a value`);
  });
});

describe('command line', () => {
  it.each([
    ['a failure mode it does not know', ['--failure-mode', 'maybe'], 2, '--failure-mode must be allow or deny, not "maybe"'],
    ['a timeout without a unit', ['--redis', 'redis://127.0.0.1:1', '--redis-timeout', '50'], 2, '--redis-timeout: "50" is not a duration'],
    ['Redis options without --redis', ['--redis-password', 'env:X'], 2, '--redis-password, --redis-ca and --redis-timeout need --redis'],
    ['a listener off loopback without --insecure-plaintext', ['--listen', '0.0.0.0:0'], 2, 'is not a loopback address, and this listener has no TLS'],
    ['a CA for a plain redis:// URL', ['--redis', 'redis://127.0.0.1:1', '--redis-ca', '/dev/null'], 1, 'a Redis CA is given for a redis:// URL; use rediss:// for TLS'],
  ])('refuses %s', async (_what, args, code, message) => {
    const result = await runCli(['ratelimit', '--config', configFile(1), '--listen', '127.0.0.1:0', ...args]);
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });
});

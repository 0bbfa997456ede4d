// ShouldRateLimit through `meshward ratelimit` counting in Redis, against the floor: a bare Redis INCR loop from
// Node (ioredis, the client meshward uses, with the same auto-pipelining), both closed loops with the same
// concurrency, against one redis-server, in one run. Columns: calls/s, p50/p99 latency, and the CPU each process
// spent per call.
//
//   npm run bench:ratelimit -- [--duration 10] [--warmup 2] [--concurrency 32]
//
// Needs redis-server (Debian: redis-server). Uses only 127.0.0.1, free ports and a temp dir; stops Redis and the
// meshward child on every exit path. The RLS client is as lean as the floor's: one node:http2 session, the request
// encoded and framed once, per call one stream and a check of grpc-status, so that the load generator's own cost
// on the shared cores does not decide the ratio.
import { once } from 'node:events';
import { connect } from 'node:http2';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import protobuf from 'protobufjs';
import { freePort, startChild, tempDir, waitReady } from './ca-procs.mjs';

const REPO = new URL('..', import.meta.url).pathname;
const { values: flags } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '32' } },
});
const DURATION_S = Number(flags.duration);
const WARMUP_S = Number(flags.warmup);
const CONCURRENCY = Number(flags.concurrency);
const PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
/** Distinct descriptor values, so that calls count into many keys as real clients do. */
const CLIENTS = 1000;
/** High enough never to be reached: every call is counted and answered OK. */
const LIMIT = 4_000_000_000;

/** CPU time (user + system) a process has used so far, in ms; Linux /proc, with the usual 100 ticks a second. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Runs `concurrency` closed loops of `call` for the warm-up, then for the measured time: calls/s, latencies, and the
 * CPU each of `pids` spent per call (the figure to trust on a shared machine: a starved process is slow, not costly).
 */
async function closedLoop(call, pids) {
  const run = async (seconds, latencies) => {
    const end = performance.now() + seconds * 1000;
    let calls = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        for (let i = worker; performance.now() < end; i += CONCURRENCY) {
          const start = performance.now();
          await call(i);
          latencies?.push(performance.now() - start);
          calls += 1;
        }
      }),
    );
    return calls;
  };
  await run(WARMUP_S);
  const latencies = [];
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)]));
  const calls = await run(DURATION_S, latencies);
  const cpuUsPerCall = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, ((cpuMs(pid) - before[name]) * 1000) / calls]));
  latencies.sort((a, b) => a - b);
  return { rate: calls / DURATION_S, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpuUsPerCall };
}

/** A lean ShouldRateLimit client: one HTTP/2 session, requests encoded and framed once. */
async function leanRateLimitClient(address) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(REPO, 'proto', target));
  root.loadSync('envoy/service/ratelimit/v3/rls.proto');
  const Request = root.lookupType('envoy.service.ratelimit.v3.RateLimitRequest');
  const Response = root.lookupType('envoy.service.ratelimit.v3.RateLimitResponse');
  const framed = Array.from({ length: CLIENTS }, (_, i) => {
    const bytes = Request.encode({ domain: 'bench', descriptors: [{ entries: [{ key: 'remote_address', value: `10.0.${i >> 8}.${i & 255}` }] }] }).finish();
    const out = Buffer.allocUnsafe(5 + bytes.length);
    out[0] = 0;
    out.writeUInt32BE(bytes.length, 1);
    out.set(bytes, 5);
    return out;
  });
  const session = connect(`http://${address}`);
  await once(session, 'connect');
  session.on('error', () => {});
  return {
    call(i) {
      return new Promise((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' });
        const chunks = [];
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('trailers', (trailers) => {
          const body = Buffer.concat(chunks);
          // Every call must be answered and counted: an OK from the failure mode (the whole limit remaining) would
          // measure nothing.
          if (trailers['grpc-status'] === '0' && Response.decode(body.subarray(5)).statuses[0]?.limitRemaining < LIMIT) resolve();
          else reject(new Error(`ShouldRateLimit: grpc-status ${trailers['grpc-status']} ${trailers['grpc-message'] ?? ''}`));
        });
        stream.on('error', reject);
        stream.end(framed[i % CLIENTS]);
      });
    },
    close: () => session.close(),
  };
}

const dir = tempDir('meshward-bench-ratelimit-');
/** Resolves with the first line of `logFile` that matches `pattern`; throws (for waitReady to retry) until then. */
const logLine = (logFile, pattern) => () => {
  const line = readFileSync(logFile, 'utf8').split('\n').find((l) => pattern.test(l));
  if (line === undefined) throw new Error(`no line matching ${pattern} yet`);
  return line;
};

const redisPort = await freePort();
const redisLog = join(dir, 'redis.log');
const redis = startChild('redis-server', ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no', '--dir', dir], { logFile: redisLog });
await waitReady(logLine(redisLog, /Ready to accept connections/), { child: redis.child, what: 'redis-server' });
const redisUrl = `redis://127.0.0.1:${redisPort}`;

// The floor: a bare INCR per call from Node, nothing else (meshward sends INCRBY and EXPIRE per call).
const floorClient = new Redis({ host: '127.0.0.1', port: redisPort, enableAutoPipelining: true });
const floor = await closedLoop(
  (i) => floorClient.incr(`floor_${i % CLIENTS}`),
  { redis: redis.child.pid, 'Node client': process.pid },
);
floorClient.disconnect();

const config = join(dir, 'ratelimit.yaml');
writeFileSync(config, `domain: bench\ndescriptors:\n  - key: remote_address\n    rate_limit:\n      unit: hour\n      requests_per_unit: ${LIMIT}\n`);
const meshwardLog = join(dir, 'meshward.log');
const meshward = startChild(
  process.execPath,
  [...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(REPO, 'bin/meshward.js'), 'ratelimit', '--config', config, '--listen', '127.0.0.1:0', '--redis', redisUrl, '--redis-timeout', '1s'],
  { logFile: meshwardLog, env: { MESHWARD_LOG_LEVEL: 'info' } },
);
const { address } = JSON.parse(await waitReady(logLine(meshwardLog, /"msg":"listening"/), { child: meshward.child, what: 'meshward ratelimit' }));
const client = await leanRateLimitClient(address);
const rls = await closedLoop((i) => client.call(i), { redis: redis.child.pid, meshward: meshward.child.pid, 'RLS client': process.pid });
client.close();
await meshward.stop();
await redis.stop();

const cpu = (r) => Object.entries(r.cpuUsPerCall).map(([name, us]) => `${name} ${us.toFixed(0)}`).join(', ');
const row = (name, r) => `${name.padEnd(34)} ${r.rate.toFixed(0).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)}   ${cpu(r)}`;
console.log(`node ${process.version}, concurrency ${CONCURRENCY}, ${DURATION_S} s measured after ${WARMUP_S} s warm-up, ${CLIENTS} keys`);
console.log(`${'phase'.padEnd(34)} ${'calls/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}   CPU µs per call`);
console.log(row('floor: INCR from Node', floor));
console.log(row('meshward ratelimit: ShouldRateLimit', rls));
console.log(`meshward / floor: ${(rls.rate / floor.rate).toFixed(2)}x the calls/s, p99 ${(rls.p99 / floor.p99).toFixed(1)}x`);

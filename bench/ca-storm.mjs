// The renewal storm (issue 12): 2,000 distinct workloads, each with its own key and SPIFFE ID and already holding
// an SVID, renew at once over mTLS against a real `meshward ca serve` child. The bar: every workload gets its new
// SVID, no errors, the last within 10 s, and every issuance is in the CA's audit log.
//
//   npm run build && node bench/ca-storm.mjs
//
// The workloads' current SVIDs are issued beforehand in this process through the CA's own Authority (as
// `meshward ca issue` would, without a process per SVID), then the Authority is closed and the server started.
// Each workload renews with a new key: its CSR is made beforehand, so the storm measures the CA, not key
// generation. The renewing clients are spread over BENCH_STORM_CLIENTS forked processes
// (fixtures/storm-client.mjs); each opens one TLS connection per workload, presenting that workload's SVID, and
// sends one Sign on it (node:http2, as lean as ca-lean-client.mjs). "go" goes to all of them at once.
//
// Settings (environment): BENCH_STORM_WORKLOADS (2000), BENCH_STORM_CLIENTS (2), BENCH_STORM_DEADLINE_S (10, the
// bar), BENCH_SERVER_NODE_ARGS (extra node flags for the CA server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
// BENCH_CA_WORKERS (`ca serve --workers`), BENCH_CA_ARGS (more `ca serve` arguments).
import { execFileSync, fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { processCpuMs } from './ca-load.mjs';
import { freePort, startChild, tempDir, waitReady } from './ca-procs.mjs';
import { envCount } from './fixtures/hop-procs.mjs';
import { latencySummary } from './fixtures/fixed-rate.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TRUST_DOMAIN = 'example.org';
/** The storm clients give up on a workload after this long, so that a stuck storm still ends with a report. */
const GIVE_UP_MS = 60_000;

const env = process.env;
const fatal = (message) => {
  console.error(`renewal storm: ${message}`);
  process.exit(1);
};
const cfg = {
  workloads: envCount('BENCH_STORM_WORKLOADS', 2000, fatal),
  clients: envCount('BENCH_STORM_CLIENTS', 2, fatal),
  deadlineS: envCount('BENCH_STORM_DEADLINE_S', 10, fatal),
  serverNodeArgs: (env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
  serverArgs: [...(env.BENCH_CA_WORKERS !== undefined ? ['--workers', env.BENCH_CA_WORKERS] : []), ...(env.BENCH_CA_ARGS ?? '').split(' ').filter(Boolean)],
};

let ca;
let caWireTypes;
try {
  ca = await import('../dist/ca/index.js');
  ({ caWireTypes } = await import('../dist/ca/proto.js'));
} catch (err) {
  fatal(`cannot load ../dist/ca/index.js (${err.message}); run \`npm run build\` first`);
}
const { Authority, CaClient, makeCsr } = ca;

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** The workloads, each with its current SVID (issued now, as `ca issue` would) and a CSR for its renewal key. */
async function makeWorkloads(caDir) {
  const { SignRequest } = caWireTypes();
  const authority = await Authority.open(caDir, { signingWorkers: cpus().length });
  try {
    return await pool(Array.from({ length: cfg.workloads }, (_, i) => i), 32, async (i) => {
      const spiffeId = `spiffe://${TRUST_DOMAIN}/ns/storm/sa/workload-${i}`;
      const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
      const svid = await authority.sign({ csr: await makeCsr(key), spiffeId, ttlSeconds: 3600 }, { method: 'operator' });
      const renewKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
      const request = SignRequest.encode({ csr: Buffer.from(await makeCsr(renewKey)), ttlSeconds: 0, joinToken: '', spiffeId: '' }).finish();
      return {
        id: i,
        spiffeId,
        certChainPem: svid.chainPem,
        keyPem: key.export({ type: 'pkcs8', format: 'pem' }),
        renewKeyPem: renewKey.export({ type: 'pkcs8', format: 'pem' }),
        request: Buffer.from(request).toString('base64'),
      };
    });
  } finally {
    await authority.close();
  }
}

/** Forks the client processes, hands each its share, and resolves once all said "ready". */
async function startClients(workloads, job) {
  const clients = [];
  for (let c = 0; c < cfg.clients; c++) {
    const child = fork(join(ROOT, 'bench/fixtures/storm-client.mjs'), [], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const share = workloads.filter((_, i) => i % cfg.clients === c);
    const messages = [];
    let waiter;
    child.on('message', (m) => (waiter ? waiter(m) : messages.push(m)));
    const next = () => (messages.length ? Promise.resolve(messages.shift()) : new Promise((resolve) => (waiter = (m) => ((waiter = undefined), resolve(m)))));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.send({ type: 'job', ...job, workloads: share });
    clients.push({ child, next, exited, share: share.length });
  }
  await Promise.all(clients.map(async (c) => {
    const m = await Promise.race([c.next(), c.exited.then((e) => ({ type: 'exit', ...e }))]);
    if (m.type !== 'ready') throw new Error(`a storm client did not start: ${JSON.stringify(m)}`);
  }));
  return clients;
}

/** The renewals in the CA's audit log: issuances with the given serials, and refusals (a storm writes far less than a rotation's worth). */
function auditIssuances(path, serials) {
  const found = new Set();
  let refused = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.type !== 'ca' || r.method !== 'renewal') continue;
    if (r.decision === 'issued' && serials.has(r.serial)) found.add(r.serial);
    else if (r.decision === 'refused') refused++;
  }
  return { found: found.size, refused };
}

/** The kernel's counts of connections dropped because a listen queue was full (all sockets on this machine). */
function listenDrops() {
  try {
    const [names, values] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const row = Object.fromEntries(names.split(' ').slice(1).map((n, i) => [n, Number(values.split(' ')[i + 1])]));
    return { overflows: row.ListenOverflows, drops: row.ListenDrops };
  } catch {
    return undefined;
  }
}

async function main() {
  const work = tempDir('meshward-ca-storm-');
  const caDir = join(work, 'ca');
  console.error(`# setting up in ${work}`);
  execFileSync(process.execPath, [join(ROOT, 'bin/meshward.js'), 'ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const bundlePem = readFileSync(join(caDir, 'bundle.pem'), 'utf8');

  let t = performance.now();
  console.error(`# issuing ${cfg.workloads} workloads their current SVIDs and renewal CSRs`);
  const workloads = await makeWorkloads(caDir);
  const issueS = (performance.now() - t) / 1000;

  const address = `127.0.0.1:${await freePort()}`;
  const logFile = join(work, 'ca-serve.log');
  console.error(`# meshward ca serve on ${address}, log to ${logFile}`);
  const server = startChild(process.execPath, [...cfg.serverNodeArgs, join(ROOT, 'bin/meshward.js'), 'ca', 'serve', '--dir', caDir, '--listen', address, ...cfg.serverArgs], {
    cwd: ROOT,
    env: { MESHWARD_LOG_LEVEL: 'warn' },
    logFile,
  });
  let results;
  let wallMs;
  let serverCpuMs;
  let clients = [];
  let dropsBefore;
  let drops;
  try {
    const probe = new CaClient({ address, trustDomain: TRUST_DOMAIN, bundlePem });
    await waitReady(() => probe.getBundle(1000), { child: server.child, what: 'meshward ca serve' });
    probe.close();
    console.error(`# ${cfg.clients} client processes, ${cfg.workloads} workloads: renewing all at once`);
    clients = await startClients(workloads, { address, bundlePem, deadlineMs: GIVE_UP_MS });
    const cpuBefore = processCpuMs(server.child.pid);
    dropsBefore = listenDrops();
    t = performance.now();
    for (const c of clients) c.child.send({ type: 'go' });
    const answers = await Promise.all(clients.map((c) => Promise.race([c.next(), c.exited.then((e) => ({ type: 'exit', ...e }))])));
    wallMs = performance.now() - t;
    serverCpuMs = processCpuMs(server.child.pid) - cpuBefore;
    const dropsAfter = listenDrops();
    if (dropsBefore && dropsAfter) drops = { overflows: dropsAfter.overflows - dropsBefore.overflows, drops: dropsAfter.drops - dropsBefore.drops };
    const lost = answers.filter((a) => a.type !== 'done');
    if (lost.length) throw new Error(`${lost.length} storm client(s) exited without a report: ${JSON.stringify(lost)}`);
    results = answers.flatMap((a) => a.results);
  } finally {
    for (const c of clients) if (c.child.exitCode === null) c.child.kill();
    // SIGTERM: the server drains and closes its audit log, so every record is on disk when it is read.
    await server.stop();
  }

  const ok = results.filter((r) => r.ok);
  const failed = results.filter((r) => !r.ok);
  const serials = new Set(ok.map((r) => r.serial));
  const audit = auditIssuances(join(caDir, 'audit.log'), serials);
  const times = latencySummary(ok.map((r) => r.ms));
  const lastS = times.max / 1000;
  const reasons = {};
  for (const r of failed) reasons[r.error] = (reasons[r.error] ?? 0) + 1;
  const verdict = (good) => (good ? 'meets the bar' : 'BELOW the bar');
  const lines = [
    `Renewal storm: ${cfg.workloads} workloads (own key, own SPIFFE ID, current SVID), ${cfg.clients} client processes, each workload one mTLS connection and one Sign, all at once`,
    `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; server flags ${JSON.stringify([...cfg.serverNodeArgs, ...cfg.serverArgs].join(' '))}`,
    `(set-up: ${cfg.workloads} SVIDs and renewal CSRs made in ${issueS.toFixed(1)} s)`,
    '',
    `renewed: ${ok.length} of ${cfg.workloads}, errors ${failed.length}${failed.length ? ` ${JSON.stringify(reasons)}` : ''}`,
    `time from "go" to each new SVID: p50 ${(times.p50 / 1000).toFixed(2)} s, p90 ${(times.p90 / 1000).toFixed(2)} s, p99 ${(times.p99 / 1000).toFixed(2)} s, last ${lastS.toFixed(2)} s (wall ${(wallMs / 1000).toFixed(2)} s until every client reported)`,
    `CA server CPU during the storm: ${(serverCpuMs / 1000).toFixed(2)} s = ${(serverCpuMs / Math.max(ok.length, 1)).toFixed(2)} ms per renewal (TLS handshake + Sign + audit record)`,
    ...(drops ? [`kernel: ${drops.overflows} listen-queue overflows, ${drops.drops} SYNs dropped meanwhile (whole machine; a full accept queue makes a client wait for a SYN retransmit, 1 s and more)`] : []),
    `audit log: ${audit.found} of ${ok.length} renewals' issuances recorded${audit.refused ? `, ${audit.refused} refusals` : ''}`,
    '',
    `all ${cfg.workloads} got their SVID with 0 errors: ${verdict(ok.length === cfg.workloads && failed.length === 0)}`,
    `the last within ${cfg.deadlineS} s (${lastS.toFixed(2)} s): ${verdict(ok.length === cfg.workloads && lastS <= cfg.deadlineS)}`,
    `every issuance in the audit log: ${verdict(audit.found === ok.length && ok.length > 0)}`,
  ];
  console.log(lines.join('\n'));
  return ok.length === cfg.workloads && failed.length === 0 && audit.found === ok.length;
}

try {
  process.exit((await main()) ? 0 : 1);
} catch (err) {
  console.error(`renewal storm failed: ${err.stack ?? err}`);
  process.exit(1);
}

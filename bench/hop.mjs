// The sidecar hop benchmark (issues 4 and 12): wrk → web's outbound sidecar → mTLS → orders's inbound sidecar (policy
// allows, audit log on) → nginx, next to the same hop through two HAProxy instances (one originating, one
// terminating mTLS with the same certificates), through two bare Node.js processes (phase `node`:
// fixtures/node-hop.mjs, node:http / node:https servers forwarding with undici as meshward does, with no policy,
// audit, logging or XFCC: the floor Node's own HTTP and TLS stack sets), through the same two processes piping TLS
// bytes with no HTTP at all (phase `pipe`: the ceiling of any Node.js proxy) and the direct path wrk → nginx, in one run.
//
//   npm run build && node bench/hop.mjs
//
// Three modes, in this order: `fixed` (every hop at 1,000 requests/s open loop over 16 keep-alive connections,
// fixtures/fixed-rate.mjs: p50/p90/p99, the latency each hop adds over direct, each proxy process's CPU per request
// and RSS idle and after the load), `cold` (the node and meshward pairs restarted and loaded from the moment they
// are ready) and `saturation` (wrk as fast as each hop answers).
// The bars, issue 4: meshward's hop >= 0.50x HAProxy's requests/s, median latency <= 2.0x HAProxy's. Issue 12:
// meshward's added p90 <= 2x HAProxy's, added p99 <= 3x; the cold window's p90/p99 <= 1.5x the warm ones; CPU per
// request per sidecar <= 1.1x the node floor's; RSS <= 64 MB idle and <= the floor's + 32 MB after the load;
// saturated requests/s >= 0.9x the floor's. meshward/node CPU per request near 1 means the gap to HAProxy is
// Node's; well above 1, meshward's own code.
// Settings (environment): BENCH_MODES (fixed,cold,saturation), BENCH_PHASES (direct,haproxy,node,pipe,meshward),
// BENCH_SIDECAR_NODE_ARGS (extra node flags for both sidecars and both node-hop processes, e.g. "--cpu-prof
// --cpu-prof-dir=/tmp/prof"), BENCH_MESHWARD_NODE_ARGS (node flags for the sidecars only; default: the injected
// container's NODE_OPTIONS, so add them to any flags you give), BENCH_PROBE=1
// (fixtures/process-probe.mjs in every Node proxy: GC, event-loop delay, allocation, per second), BENCH_MESHWARD_AUDIT=0
// (both sidecars without their audit logs: what the log costs), BENCH_WARMUP_REQUESTS (the sidecars' warmUp.requests).
// Saturation: BENCH_DURATION_S (10), BENCH_WARMUP_S (2; the first round's at least 5), BENCH_ROUNDS (3),
// BENCH_CONNECTIONS (32), BENCH_THREADS (1, wrk threads), BENCH_HAPROXY_THREADS (1, nbthread of each HAProxy),
// BENCH_HAPROXY_LOG (0; 1 logs every request on both HAProxy instances). Fixed rate and cold start:
// BENCH_FIXED_RATE (1000), BENCH_FIXED_CONNECTIONS (16), BENCH_FIXED_WARMUP_S (5; the first round at least 20),
// BENCH_FIXED_DURATION_S (10), BENCH_FIXED_ROUNDS (1), BENCH_COLD_S (10).
// Rounds rotate the order of the hops so that noise from other work on the machine falls on all of them; the
// figures are medians over rounds.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processCpuMs } from './ca-load.mjs';
import { fixedRateReport, fixedRun, probeSummary, rssOf, threadSplit } from './fixtures/hop-fixed.mjs';
import { SIDECAR_NODE_OPTIONS } from '../dist/kube/sidecar-container.js';
import { freePort as anyFreePort, startChild, tempDir } from './ca-procs.mjs';
import {
  ROUTE_HOST,
  TRUST_DOMAIN,
  WEB_ID,
  ORDERS_ID,
  haproxyOriginating,
  haproxyTerminating,
  nginxConfig,
  ordersSidecarYaml,
  policyYaml,
  webSidecarYaml,
} from './fixtures/hop-configs.mjs';
import { alive, checkOk, checkRefusesAnonymous, curl, envCount, findTool, httpGetStatus, logTail, startServer, tcpProbe, toolVersion } from './fixtures/hop-procs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MESHWARD = join(ROOT, 'bin/meshward.js');
const NODE_HOP = join(ROOT, 'bench/fixtures/node-hop.mjs');
const REPORT_LUA = join(ROOT, 'bench/fixtures/hop-report.lua');
const PROBE_URL = pathToFileURL(join(ROOT, 'bench/fixtures/process-probe.mjs')).href;
const FIRST_WARMUP_S = 5;
/**
 * The first fixed-rate round's warm-up, at least: a sidecar's optimising compilers were still busy 5 s into the load
 * (V8 worker threads 39-56 µs per request, against 7-15 after 25 s; bench/README.md), so a 5 s warm-up measured
 * part of its tier-up rather than the steady state the bars are about. The cold mode measures the start itself.
 */
const FIXED_FIRST_WARMUP_S = 20;

const env = process.env;
const count = (name, fallback) => envCount(name, fallback, fatal);
const cfg = {
  durationS: count('BENCH_DURATION_S', 10),
  warmupS: count('BENCH_WARMUP_S', 2),
  rounds: count('BENCH_ROUNDS', 3),
  connections: count('BENCH_CONNECTIONS', 32),
  threads: count('BENCH_THREADS', 1),
  haproxyThreads: count('BENCH_HAPROXY_THREADS', 1),
  haproxyLog: env.BENCH_HAPROXY_LOG === '1',
  phases: (env.BENCH_PHASES ?? 'direct,haproxy,node,pipe,meshward').split(',').map((s) => s.trim()).filter(Boolean),
  sidecarNodeArgs: (env.BENCH_SIDECAR_NODE_ARGS ?? '').split(' ').filter(Boolean),
  // The sidecar as `meshward inject` runs it: with the injected container's NODE_OPTIONS (src/kube/sidecar-container.ts).
  meshwardNodeArgs: (env.BENCH_MESHWARD_NODE_ARGS ?? SIDECAR_NODE_OPTIONS).split(' ').filter(Boolean),
  modes: (env.BENCH_MODES ?? 'fixed,cold,saturation').split(',').map((s) => s.trim()).filter(Boolean),
  fixed: {
    rate: count('BENCH_FIXED_RATE', 1000),
    connections: count('BENCH_FIXED_CONNECTIONS', 16),
    durationS: count('BENCH_FIXED_DURATION_S', 10),
    warmupS: count('BENCH_FIXED_WARMUP_S', 5),
    rounds: count('BENCH_FIXED_ROUNDS', 1),
    coldS: count('BENCH_COLD_S', 10),
  },
  probe: env.BENCH_PROBE === '1',
};
const MODES = ['fixed', 'cold', 'saturation'];

let probeDir;
/** Where process-probe.mjs writes for the process `name`, when BENCH_PROBE=1. */
const probeFile = (name) => (cfg.probe ? join(probeDir, `${name}.jsonl`) : undefined);
const probeEnv = (name) => (cfg.probe ? { MESHWARD_BENCH_PROBE_FILE: probeFile(name) } : {});
/** Node flags for a proxy process under test (sidecar or node hop). */
const nodeArgs = () => [...cfg.sidecarNodeArgs, ...(cfg.probe ? ['--import', PROBE_URL] : [])];

/**
 * A free port no earlier call in this run handed out: the kernel may give a just-closed ephemeral port out again, and
 * two servers of one run configured with the same port fail with EADDRINUSE (seen: web's sidecar and orders's admin).
 */
const portsTaken = new Set();
async function freePort() {
  for (let tries = 0; tries < 50; tries++) {
    const port = await anyFreePort();
    if (!portsTaken.has(port)) {
      portsTaken.add(port);
      return port;
    }
  }
  throw new Error('no free port found that this run has not used already');
}

function fatal(message) {
  console.error(`hop benchmark: ${message}`);
  process.exit(1);
}

// --- wrk ---------------------------------------------------------------------------------------------------------

let runSeq = 0;
/** One wrk run; resolves wrk's summary (via hop-report.lua) and the CPU milliseconds each of `pids` used meanwhile. */
async function runWrk({ url, seconds, pids, work }) {
  const logFile = join(work, `wrk-${++runSeq}.out`);
  const args = ['-t', String(cfg.threads), '-c', String(cfg.connections), '-d', `${seconds}s`, '--latency', '-s', REPORT_LUA, '-H', `Host: ${ROUTE_HOST}`, url];
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid)]));
  const wrk = startChild(findTool('wrk'), args, { cwd: work, logFile });
  let timer;
  const finished = await Promise.race([wrk.exited, new Promise((resolve) => (timer = setTimeout(resolve, (seconds + 30) * 1000)))]);
  clearTimeout(timer);
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => {
      const after = processCpuMs(pid);
      return [k, after !== undefined && cpuBefore[k] !== undefined ? after - cpuBefore[k] : undefined];
    }),
  );
  await wrk.stop(1000);
  const output = readFileSync(logFile, 'utf8');
  if (!finished) throw new Error(`wrk did not finish within ${seconds + 30} s:\n${output}`);
  const line = output.split('\n').find((l) => l.startsWith('HOP-RESULT '));
  if (!line) throw new Error(`wrk (exit ${finished.code ?? finished.signal}) printed no result:\n${output}`);
  const r = JSON.parse(line.slice('HOP-RESULT '.length));
  const e = r.errors;
  return {
    requests: r.requests,
    rate: r.requests / (r.durationUs / 1e6),
    p50: r.latencyUs.p50 / 1000,
    p90: r.latencyUs.p90 / 1000,
    p99: r.latencyUs.p99 / 1000,
    errors: e.status + e.connect + e.read + e.write + e.timeout,
    errorDetail: e,
    cpu,
  };
}

// --- the phases -------------------------------------------------------------------------------------------------

/**
 * Every phase: { name, label, url, cpuPids: { role: pid } (the proxies), procs, failed?: reason, runs: [], checks }.
 * The servers start once and stay up through all rounds; idle ones cost nothing.
 */
async function setUpDirect({ nginx, nginxPort }) {
  const url = `http://127.0.0.1:${nginxPort}/`;
  checkOk(url);
  return { url, port: nginxPort, procs: [], cpuPids: {}, appPid: nginx.child.pid };
}

async function setUpHaproxy({ work, caDir, nginx, nginxPort }) {
  const haproxy = findTool('haproxy');
  if (!haproxy) throw new Error('haproxy not found (apt-get install haproxy)');
  const dir = join(work, 'haproxy');
  mkdirSync(dir);
  // HAProxy wants the certificate chain and its key in one file.
  const combined = {};
  for (const name of ['web', 'orders']) {
    combined[name] = join(dir, `${name}-crt-key.pem`);
    writeFileSync(combined[name], readFileSync(join(caDir, `${name}.pem`), 'utf8') + readFileSync(join(caDir, `${name}.key`), 'utf8'), { mode: 0o600 });
  }
  const bundle = join(caDir, 'bundle.pem');
  const [outPort, inPort] = [await freePort(), await freePort()];
  const common = { threads: cfg.haproxyThreads, log: cfg.haproxyLog, bundle };
  writeFileSync(join(dir, 'terminating.cfg'), haproxyTerminating({ ...common, port: inPort, appPort: nginxPort, certKeyPem: combined.orders }));
  writeFileSync(join(dir, 'originating.cfg'), haproxyOriginating({ ...common, port: outPort, upstreamPort: inPort, certKeyPem: combined.web }));
  const procs = [];
  try {
    for (const [role, port] of [['terminating', inPort], ['originating', outPort]]) {
      procs.push(
        await startServer(`haproxy (${role})`, haproxy, ['-db', '-f', join(dir, `${role}.cfg`)], { logFile: join(dir, `${role}.log`), probe: () => tcpProbe(port) }),
      );
    }
    const url = `http://127.0.0.1:${outPort}/`;
    const cpuPids = { out: procs[1].child.pid, in: procs[0].child.pid };
    const idleRss = rssOf(cpuPids);
    checkRefusesAnonymous(inPort, 'the terminating haproxy');
    checkOk(url);
    return { url, port: outPort, procs, cpuPids, idleRss, appPid: nginx.child.pid };
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop(2000)));
    throw new Error(`${err.message}${procs.map((p) => `\n  ${p.what} log:\n${logTail(p.logFile)}`).join('')}`);
  }
}

/** Two bare Node.js processes in the sidecars' places (fixtures/node-hop.mjs): Node's HTTP + TLS + undici, nothing else. */
async function setUpNode(ctx) {
  return setUpNodeHop(ctx, 'node', '');
}

/** The same two processes piping TLS bytes with no HTTP at all: the least any Node.js proxy can cost. */
async function setUpPipe(ctx) {
  return setUpNodeHop(ctx, 'pipe', 'pipe-');
}

async function setUpNodeHop({ work, caDir, nginx, nginxPort }, name, rolePrefix) {
  const dir = join(work, name);
  mkdirSync(dir);
  const bundle = join(caDir, 'bundle.pem');
  const identity = (name) => ['--cert', join(caDir, `${name}.pem`), '--key', join(caDir, `${name}.key`), '--ca', bundle];
  const [outPort, inPort] = [await freePort(), await freePort()];
  const roles = [
    [`${rolePrefix}terminating`, inPort, ['--app', `127.0.0.1:${nginxPort}`, ...identity('orders')]],
    [`${rolePrefix}originating`, outPort, ['--upstream', `127.0.0.1:${inPort}`, '--servername', ROUTE_HOST, ...identity('web')]],
  ];
  let starts = 0;
  const startPair = async () => {
    const procs = [];
    starts++;
    const probeName = (role) => `${name}-${role}-${starts}`;
    try {
      for (const [role, port, args] of roles) {
        procs.push(
          await startServer(`node hop (${role})`, process.execPath, [...nodeArgs(), NODE_HOP, role, '--port', String(port), ...args], {
            logFile: join(dir, `${role}.log`),
            env: probeEnv(probeName(role)),
            probe: () => tcpProbe(port),
          }),
        );
      }
    } catch (err) {
      await Promise.all(procs.map((p) => p.stop(2000)));
      throw err;
    }
    return { procs, cpuPids: { out: procs[1].child.pid, in: procs[0].child.pid }, probeFiles: { out: probeFile(probeName(roles[1][0])), in: probeFile(probeName(roles[0][0])) } };
  };
  const phase = { url: `http://127.0.0.1:${outPort}/`, port: outPort, appPid: nginx.child.pid, restart: restarter(startPair) };
  try {
    Object.assign(phase, await startPair());
    phase.idleRss = rssOf(phase.cpuPids);
    checkRefusesAnonymous(inPort, 'the terminating node-hop process');
    checkOk(phase.url);
    return phase;
  } catch (err) {
    await Promise.all((phase.procs ?? []).map((p) => p.stop(2000)));
    throw new Error(`${err.message}${(phase.procs ?? []).map((p) => `\n  ${p.what} log:\n${logTail(p.logFile)}`).join('')}`);
  }
}

/** For the cold-start window: stops the running pair (`running.procs`), starts a fresh one; its fields and idle RSS. */
function restarter(startPair) {
  return async (running) => {
    await Promise.all(running.procs.map((p) => p.stop(5000)));
    const pair = await startPair();
    return { ...pair, idleRss: rssOf(pair.cpuPids) };
  };
}

async function setUpMeshward({ work, caDir, nginxPort, nginx }) {
  const dir = join(work, 'meshward');
  mkdirSync(dir);
  const policyPath = join(dir, 'policy.yaml');
  writeFileSync(policyPath, policyYaml());
  const check = spawnSync(process.execPath, [MESHWARD, 'policy', 'check', policyPath], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`meshward policy check ${policyPath} failed: ${check.stdout}${check.stderr}`);

  const ports = { inbound: await freePort(), outbound: await freePort(), ordersAdmin: await freePort(), webAdmin: await freePort() };
  const audit = { orders: join(dir, 'orders-audit.jsonl'), web: join(dir, 'web-audit.jsonl') };
  writeFileSync(
    join(dir, 'orders.yaml'),
    ordersSidecarYaml({ caDir, inboundPort: ports.inbound, appPort: nginxPort, policyPath, adminPort: ports.ordersAdmin, auditPath: audit.orders }),
  );
  writeFileSync(
    join(dir, 'web.yaml'),
    webSidecarYaml({ caDir, outboundPort: ports.outbound, ordersInboundPort: ports.inbound, adminPort: ports.webAdmin, auditPath: audit.web }),
  );
  const url = `http://127.0.0.1:${ports.outbound}/`;
  let starts = 0;
  /** Both sidecars, started and answering 200 on /readyz: nothing else has been sent to them. */
  const startPair = async () => {
    const procs = [];
    starts++;
    try {
      for (const [name, adminPort] of [['orders', ports.ordersAdmin], ['web', ports.webAdmin]]) {
        const readyz = `http://127.0.0.1:${adminPort}/readyz`;
        const role = name === 'web' ? 'out' : 'in';
        procs.push(
          await startServer(`meshward sidecar (${name})`, process.execPath, [...nodeArgs(), ...cfg.meshwardNodeArgs, MESHWARD, 'sidecar', '--config', join(dir, `${name}.yaml`)], {
            logFile: join(dir, `${name}.log`),
            env: { MESHWARD_LOG_LEVEL: 'info', ...probeEnv(`meshward-${role}-${starts}`) },
            probe: async () => {
              const status = await httpGetStatus(readyz);
              if (status !== 200) throw new Error(`GET ${readyz}: HTTP ${status}`);
            },
          }),
        );
      }
    } catch (err) {
      await Promise.all(procs.map((p) => p.stop(5000)));
      throw err;
    }
    return { procs, cpuPids: { out: procs[1].child.pid, in: procs[0].child.pid }, probeFiles: { out: probeFile(`meshward-out-${starts}`), in: probeFile(`meshward-in-${starts}`) } };
  };
  const phase = { url, port: ports.outbound, appPid: nginx.child.pid, auditPaths: Object.values(audit), logFiles: [join(dir, 'orders.log'), join(dir, 'web.log')] };
  // The cold-start window restarts the pair on the same ports and files.
  phase.restart = restarter(startPair);
  try {
    Object.assign(phase, await startPair());
    phase.idleRss = rssOf(phase.cpuPids);
    checkRefusesAnonymous(ports.inbound, "orders's inbound sidecar");
    checkOk(url);
    // Authorization must be on in what is measured: the policy allows web only GET.
    const denied = curl(['-X', 'POST', '--data', '', '-o', '/dev/null', '-H', `Host: ${ROUTE_HOST}`, url]);
    if (denied.status !== 403) throw new Error(`POST through the meshward hop: expected 403 from the policy (it allows only GET), got exit ${denied.code}, HTTP ${denied.status || '-'} ${denied.stderr}`);
    return phase;
  } catch (err) {
    await Promise.all((phase.procs ?? []).map((p) => p.stop(5000)));
    throw new Error(`${err.message}${phase.procs ? phase.logFiles.map((f) => `\n  ${f}:\n${logTail(f)}`).join('') : ''}`);
  }
}

const PHASES = {
  direct: { label: 'direct (wrk → nginx)', setUp: setUpDirect },
  haproxy: { label: `haproxy hop (nbthread ${cfg.haproxyThreads}${cfg.haproxyLog ? ', logging' : ''})`, setUp: setUpHaproxy },
  node: { label: 'node hop (https + undici only: the floor)', setUp: setUpNode },
  pipe: { label: 'node TLS pipe (no HTTP: the ceiling)', setUp: setUpPipe },
  meshward: { label: 'meshward hop (authz + audit, info logs)', setUp: setUpMeshward },
};

/** Newlines in a file and in its rotated siblings (PATH.<time>.<n>). */
function countLines(path) {
  const dir = dirname(path);
  const base = path.slice(dir.length + 1);
  let count = 0;
  const buf = Buffer.alloc(1 << 20);
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name !== base && !name.startsWith(`${base}.`)) continue;
    const fd = openSync(join(dir, name), 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) for (let i = 0; i < n; i++) if (buf[i] === 10) count++;
    } finally {
      closeSync(fd);
    }
  }
  return count;
}

// --- main -------------------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  for (const name of cfg.phases) if (!PHASES[name]) fatal(`BENCH_PHASES: unknown phase "${name}" (${Object.keys(PHASES).join(', ')})`);
  for (const mode of cfg.modes) if (!MODES.includes(mode)) fatal(`BENCH_MODES: unknown mode "${mode}" (${MODES.join(', ')})`);
  for (const [tool, hint] of [['wrk', 'apt-get install wrk'], ['nginx', 'apt-get install nginx'], ['curl', 'apt-get install curl']]) {
    if (!findTool(tool)) fatal(`${tool} not found (${hint})`);
  }
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) fatal('dist/ is missing: run `npm run build` first');

  const work = tempDir('meshward-hop-bench-');
  chmodSync(work, 0o700);
  console.error(`# setting up in ${work}`);
  const caDir = join(work, 'ca');
  const meshward = (...args) => execFileSync(process.execPath, [MESHWARD, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    meshward('ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir);
    meshward('ca', 'issue', '--dir', caDir, '--spiffe-id', WEB_ID, '--out', join(caDir, 'web'));
    meshward('ca', 'issue', '--dir', caDir, '--spiffe-id', ORDERS_ID, '--out', join(caDir, 'orders'));
  } catch (err) {
    fatal(`making the certificates with meshward's CA failed: ${err.stderr?.toString() || err.message}`);
  }

  const nginxDir = join(work, 'nginx');
  mkdirSync(nginxDir);
  const nginxPort = await freePort();
  writeFileSync(join(nginxDir, 'nginx.conf'), nginxConfig({ dir: nginxDir, port: nginxPort }));
  const nginx = await startServer('nginx', findTool('nginx'), ['-p', nginxDir, '-e', join(nginxDir, 'error.log'), '-c', join(nginxDir, 'nginx.conf')], {
    logFile: join(nginxDir, 'stderr.log'),
    probe: () => tcpProbe(nginxPort),
  });

  const phases = [];
  const ctx = { work, caDir, nginx, nginxPort };
  probeDir = join(work, 'probe');
  mkdirSync(probeDir);
  try {
    for (const name of cfg.phases) {
      const phase = { name, label: PHASES[name].label, runs: [], warmupErrors: 0 };
      phases.push(phase);
      console.error(`# ${phase.label}: starting and checking a single request`);
      try {
        Object.assign(phase, await PHASES[name].setUp(ctx));
      } catch (err) {
        phase.failed = err.message;
        console.error(`# ${name}: FAILED to set up: ${err.message}`);
      }
    }

    // The fixed rate first: it reads each proxy's memory after a moderate load, before saturation has grown it.
    if (cfg.modes.includes('fixed')) await fixedRounds(phases, nginx);
    if (cfg.modes.includes('cold')) await coldWindows(phases);
    if (cfg.modes.includes('saturation')) await saturationRounds(phases, nginx, work);
  } finally {
    for (const phase of phases) await Promise.all((phase.procs ?? []).map((p) => p.stop(5000)));
    await nginx.stop(5000);
  }

  // Counted after the sidecars stopped, so every group-committed record is in the file.
  const mesh = phases.find((p) => p.name === 'meshward');
  if (mesh?.auditPaths && (mesh.runs.length || mesh.fixedRequests)) {
    const sent = mesh.runs.reduce((n, r) => n + r.requests, 0) + (mesh.warmupRequests ?? 0) + (mesh.fixedRequests ?? 0);
    const auditRecords = mesh.auditPaths.reduce((n, p) => n + countLines(p), 0);
    const logLines = mesh.logFiles.reduce((n, p) => n + countLines(p), 0);
    mesh.logging = `${(auditRecords / sent).toFixed(2)} audit records and ${(logLines / sent).toFixed(2)} log lines per request (${sent} requests sent)`;
  }
  return phases;
}

/** The hops in the order of a round: direct first, then the others rotated by one every round. */
function roundOrder(phases, round) {
  const order = phases.filter((p) => !p.failed);
  const hops = order.filter((p) => p.name !== 'direct');
  const shift = hops.length ? (round - 1) % hops.length : 0;
  hops.push(...hops.splice(0, shift));
  return [...order.filter((p) => p.name === 'direct'), ...hops];
}

function checkAlive(phase, nginx) {
  const dead = [...phase.procs, nginx].filter((p) => !alive(p));
  if (dead.length) throw new Error(dead.map((p) => `${p.what} exited during the run (code ${p.child.exitCode ?? p.child.signalCode}):\n${logTail(p.logFile)}`).join('\n'));
}

const probesOf = (phase, run) =>
  cfg.probe ? Object.fromEntries(Object.entries(phase.probeFiles ?? {}).map(([role, file]) => [role, probeSummary(file, run.window, run.requests)])) : undefined;

/** The fixed-rate rounds (issue 12): every hop at the same open-loop rate; latency, CPU per request, RSS after. */
async function fixedRounds(phases, nginx) {
  const f = cfg.fixed;
  for (let round = 1; round <= f.rounds; round++) {
    for (const phase of roundOrder(phases, round)) {
      try {
        const warmupS = round === 1 ? Math.max(f.warmupS, FIXED_FIRST_WARMUP_S) : f.warmupS;
        const r = await fixedRun(phase, { ...f, warmupS });
        (phase.fixedRuns ??= []).push(r);
        (phase.fixedProbes ??= []).push(probesOf(phase, r));
        phase.fixedRequests = (phase.fixedRequests ?? 0) + r.requests + f.rate * warmupS;
        checkAlive(phase, nginx);
        const roles = Object.keys(phase.cpuPids);
        const cpu = roles.map((k) => `${k} ${r.cpu[k] !== undefined ? ((r.cpu[k] * 1000) / r.requests).toFixed(0) : '-'}`).join(', ');
        console.error(
          `  fixed round ${round} ${phase.name}: ${r.rate.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p90 ${r.p90.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms` +
            `${cpu ? `, CPU µs/req ${cpu}` : ''}${r.errors ? `, ${r.errors} ERRORS ${JSON.stringify(r.errorDetail)}` : ''}${r.warmupErrors ? `, ${r.warmupErrors} errors in the warm-up` : ''}`,
        );
        for (const k of roles) if (r.threads[k]) console.error(`    ${k} by thread (µs/req): ${threadSplit(r.threads[k], r.requests)}`);
      } catch (err) {
        phase.failed = `fixed round ${round}: ${err.message}`;
        console.error(`# ${phase.name}: FAILED: ${phase.failed}`);
      }
    }
  }
}

/**
 * A fresh pair under the fixed-rate load from the moment it is ready (meshward: both /readyz say 200), with no
 * warm-up at all: meshward's, and the node floor's beside it for what the runtime's own warm-up costs.
 */
async function coldWindows(phases) {
  for (const phase of phases.filter((p) => (p.name === 'node' || p.name === 'meshward') && !p.failed)) {
    try {
      console.error(`# ${phase.name}: restarting the pair for the cold-start window`);
      const { idleRss, ...fresh } = await phase.restart(phase);
      Object.assign(phase, fresh, { coldIdleRss: idleRss });
      const r = await fixedRun(phase, { ...cfg.fixed, warmupS: 0, durationS: cfg.fixed.coldS });
      phase.coldRun = r;
      phase.coldProbes = probesOf(phase, r);
      phase.fixedRequests = (phase.fixedRequests ?? 0) + r.requests;
      console.error(`  cold ${phase.name}: ${r.rate.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p90 ${r.p90.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms${r.errors ? `, ${r.errors} ERRORS ${JSON.stringify(r.errorDetail)}` : ''}`);
    } catch (err) {
      phase.failed = `cold start: ${err.message}`;
      console.error(`# ${phase.name}: FAILED: ${phase.failed}`);
    }
  }
}

/** The saturation rounds (issue 4): wrk as fast as the hop answers. */
async function saturationRounds(phases, nginx, work) {
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const phase of roundOrder(phases, round)) {
      if (phase.failed) continue;
      try {
        const pids = { ...phase.cpuPids, app: phase.appPid };
        // The first warm-up is longer: V8 needs a few seconds of load to optimise the sidecars' hot paths.
        const warm = await runWrk({ url: phase.url, seconds: round === 1 ? Math.max(cfg.warmupS, FIRST_WARMUP_S) : cfg.warmupS, pids, work });
        phase.warmupRequests = (phase.warmupRequests ?? 0) + warm.requests;
        phase.warmupErrors += warm.errors;
        const r = await runWrk({ url: phase.url, seconds: cfg.durationS, pids, work });
        phase.runs.push(r);
        checkAlive(phase, nginx);
        const roles = Object.keys(phase.cpuPids);
        const cpu = roles.length && roles.every((k) => r.cpu[k] !== undefined) ? `, proxy CPU ${((roles.reduce((n, k) => n + r.cpu[k], 0) * 1000) / r.requests).toFixed(0)} µs/req` : '';
        console.error(
          `  round ${round} ${phase.name}: ${r.rate.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms${cpu}` +
            `${r.errors ? `, ${r.errors} ERRORS ${JSON.stringify(r.errorDetail)}` : ''}${warm.errors ? `, ${warm.errors} errors in the warm-up` : ''}`,
        );
      } catch (err) {
        phase.failed = `round ${round}: ${err.message}`;
        console.error(`# ${phase.name}: FAILED: ${phase.failed}`);
      }
    }
  }
}

function report(phases) {
  const lines = [
    `Sidecar hop benchmark, modes ${cfg.modes.join(', ')}: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
      `${toolVersion('wrk', ['-v'])}; ${toolVersion(findTool('nginx'), ['-v'])}; ${findTool('haproxy') ? toolVersion(findTool('haproxy'), ['-v']) : 'no haproxy'}`,
    `node flags: proxies under test ${JSON.stringify(cfg.sidecarNodeArgs.join(' '))}, meshward only ${JSON.stringify(cfg.meshwardNodeArgs.join(' '))}${cfg.probe ? ', process-probe.mjs loaded' : ''}`,
    '',
  ];
  for (const p of phases) if (p.failed) lines.push(`!!! ${p.name} FAILED: ${p.failed}`);
  const logging = phases.find((p) => p.logging)?.logging;
  if (logging) lines.push(`meshward hop logging: ${logging}`, '');
  if (cfg.modes.includes('saturation')) lines.push(...saturationReport(phases), '');
  if (cfg.modes.includes('fixed') || cfg.modes.includes('cold')) lines.push(...fixedRateReport(phases, { ...cfg.fixed, firstWarmupS: Math.max(cfg.fixed.warmupS, FIXED_FIRST_WARMUP_S) }));
  console.log(lines.join('\n'));
  const errors = (runs) => (runs ?? []).some((r) => r.errors || r.warmupErrors);
  return !phases.some((p) => p.failed || p.warmupErrors || errors(p.runs) || errors(p.fixedRuns) || errors(p.coldRun ? [p.coldRun] : []));
}

/** The saturation table (wrk as fast as it goes) and the verdicts of issues 4 and 12. */
function saturationReport(phases) {
  const ms = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  const us = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
  const rows = phases.map((p) => {
    const per = (key) => median(p.runs.map((r) => (r.cpu[key] !== undefined ? (r.cpu[key] * 1000) / r.requests : NaN)));
    const roles = Object.keys(p.cpuPids ?? {});
    const proxyCpu = roles.length ? median(p.runs.map((r) => (roles.every((k) => r.cpu[k] !== undefined) ? (roles.reduce((s, k) => s + r.cpu[k], 0) * 1000) / r.requests : NaN))) : NaN;
    const errors = p.runs.reduce((n, r) => n + r.errors, 0);
    const notes = [
      roles.length ? `${roles.map((k) => `${k} ${us(per(k))}`).join(' + ')} µs` : '',
      `nginx ${us(per('app'))} µs`,
      errors ? `ERRORS ${JSON.stringify(sumErrors(p.runs))}` : '',
      p.warmupErrors ? `${p.warmupErrors} errors in warm-ups` : '',
    ];
    return {
      ...p,
      rate: median(p.runs.map((r) => r.rate)),
      p50: median(p.runs.map((r) => r.p50)),
      p99: median(p.runs.map((r) => r.p99)),
      errors,
      proxyCpu,
      roleCpu: Object.fromEntries(roles.map((k) => [k, per(k)])),
      notes: p.failed && !p.runs.length ? 'FAILED (below)' : notes.filter(Boolean).join('; '),
    };
  });
  const lines = [
    `Saturation: wrk ${cfg.threads} thread(s), ${cfg.connections} connections, ${cfg.rounds} round(s) of ${cfg.warmupS} s warm-up (first: ${Math.max(cfg.warmupS, FIRST_WARMUP_S)} s) + ${cfg.durationS} s measured; medians over rounds`,
    '',
    `| ${'phase'.padEnd(42)} | req/s  | p50 ms | p99 ms | errors | proxy CPU µs/req | notes (CPU µs/req per process)`,
    `|${'-'.repeat(44)}|-------:|-------:|-------:|-------:|-----------------:|------`,
    ...rows.map(
      (r) =>
        `| ${r.label.padEnd(42)} | ${(r.runs.length ? r.rate.toFixed(0) : '-').padStart(6)} | ${ms(r.p50).padStart(6)} | ${ms(r.p99).padStart(6)} | ${(r.runs.length ? String(r.errors) : '-').padStart(6)} | ${us(r.proxyCpu).padStart(16)} | ${r.notes}`,
    ),
    '',
  ];
  let bad = false;
  for (const r of rows) {
    bad ||= r.errors || r.warmupErrors;
    if (r.errors) lines.push(`!!! ${r.name}: ${r.errors} ERRORS in the measured runs (wrk: status = HTTP status >= 400; socket errors): ${JSON.stringify(sumErrors(r.runs))}`);
    if (r.warmupErrors) lines.push(`!!! ${r.name}: ${r.warmupErrors} ERRORS in the warm-ups`);
  }
  if (bad) lines.push('');

  const ha = rows.find((r) => r.name === 'haproxy');
  const mw = rows.find((r) => r.name === 'meshward');
  if (ha?.runs.length && mw?.runs.length && !ha.failed && !mw.failed) {
    const rateRatio = mw.rate / ha.rate;
    const p50Ratio = mw.p50 / ha.p50;
    const verdict = (ok) => (ok ? 'meets the bar' : 'BELOW the bar');
    lines.push(`meshward / haproxy requests/s = ${rateRatio.toFixed(2)}x  ${verdict(rateRatio >= 0.5)} (>= 0.50x)`);
    lines.push(`meshward / haproxy p50 latency = ${p50Ratio.toFixed(2)}x  ${verdict(p50Ratio <= 2.0)} (<= 2.0x)`);
    if (Number.isFinite(mw.proxyCpu) && Number.isFinite(ha.proxyCpu)) lines.push(`proxy CPU per request: meshward ${(mw.proxyCpu / ha.proxyCpu).toFixed(1)}x haproxy's`);
    if (mw.errors || ha.errors) lines.push('!!! the verdict is over runs WITH ERRORS (above)');
  } else if (cfg.phases.includes('haproxy') && cfg.phases.includes('meshward')) {
    lines.push('no verdict: the haproxy and meshward hops did not both complete (see above)');
  }

  // The platform's share: the node hop is Node's HTTP + TLS + undici with nothing of meshward's on top.
  const nd = rows.find((r) => r.name === 'node');
  const done = (r) => r?.runs.length && !r.failed;
  const x = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  if (done(nd) && done(ha)) {
    lines.push(`node / haproxy requests/s = ${x(nd.rate, ha.rate)}; proxy CPU per request: node ${us(nd.proxyCpu)} µs = ${x(nd.proxyCpu, ha.proxyCpu)} haproxy's ${us(ha.proxyCpu)} µs`);
  }
  if (done(nd) && done(mw)) {
    const floorRatio = mw.rate / nd.rate;
    lines.push(`meshward / node requests/s = ${floorRatio.toFixed(2)}x  ${floorRatio >= 0.9 ? 'meets the bar' : 'BELOW the bar'} (>= 0.90x, issue 12)`);
    lines.push(`  proxy CPU per request: meshward ${us(mw.proxyCpu)} µs = ${x(mw.proxyCpu, nd.proxyCpu)} node's ${us(nd.proxyCpu)} µs`);
    const added = (k) => mw.roleCpu[k] - nd.roleCpu[k];
    const share = Number.isFinite(mw.proxyCpu) && Number.isFinite(nd.proxyCpu) ? `${((100 * nd.proxyCpu) / mw.proxyCpu).toFixed(0)}%` : '-';
    lines.push(
      `  the bare Node hop costs ${share} of meshward's CPU per request; meshward's own code adds ${us(mw.proxyCpu - nd.proxyCpu)} µs/req` +
        ` (out ${us(nd.roleCpu.out)} → ${us(mw.roleCpu.out)}, ${signed(added('out'))}; in ${us(nd.roleCpu.in)} → ${us(mw.roleCpu.in)}, ${signed(added('in'))})`,
    );
  }
  // The floor of any Node.js proxy: TLS bytes piped with no HTTP, routing, authorization or logging at all.
  const pp = rows.find((r) => r.name === 'pipe');
  if (done(pp) && done(ha)) {
    lines.push(
      `pipe / haproxy requests/s = ${x(pp.rate, ha.rate)}: the ceiling for a Node.js proxy on this machine; proxy CPU per request: pipe ${us(pp.proxyCpu)} µs = ${x(pp.proxyCpu, ha.proxyCpu)} haproxy's`,
    );
  }
  if ((done(nd) && nd.errors) || (done(nd) && done(mw) && mw.errors)) lines.push('!!! the node ratios are over runs WITH ERRORS (above)');
  return lines;
}

function signed(x) {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(0)}` : '-';
}

function sumErrors(runs) {
  const total = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 };
  for (const r of runs) for (const k of Object.keys(total)) total[k] += r.errorDetail[k];
  return Object.fromEntries(Object.entries(total).filter(([, v]) => v));
}

// process.exit, not exitCode: a child's stop() leaves its grace timer pending. The exit handler of ca-procs.mjs
// still stops any child and removes the temp dirs.
try {
  process.exit(report(await main()) ? 0 : 1);
} catch (err) {
  console.error(`hop benchmark failed: ${err.stack ?? err}`);
  process.exit(1);
}

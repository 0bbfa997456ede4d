// The sidecar soak run (issue 5): sustained load through the hop of bench/hop.mjs (wrk → web's outbound sidecar →
// mTLS → orders's inbound sidecar: policy, audit log → nginx) for a set time, while both SVIDs are re-issued over
// their files every BENCH_ROTATE_S and orders's policy file is replaced by an equivalent one every BENCH_RELOAD_S.
//
//   npm run build && node bench/soak.mjs
//
// The bar: no failed request, every rotation and reload observed by the sidecars, and each sidecar's resident
// memory at the end less than 20% above what it was after the warm-up. Exit 1 otherwise.
// Settings (environment): BENCH_SOAK_S (300), BENCH_ROTATE_S (10), BENCH_RELOAD_S (30), BENCH_CONNECTIONS (16),
// BENCH_SOAK_WARMUP_S (15; the first memory sample), BENCH_THREADS (1, wrk threads), BENCH_PROBE_CONCURRENCY (2,
// the Node client that records each failure), BENCH_SIDECAR_NODE_ARGS (extra node flags for both sidecars).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, tempDir } from './ca-procs.mjs';
import { ORDERS_ID, ROUTE_HOST, TRUST_DOMAIN, WEB_ID, nginxConfig, ordersSidecarYaml, webSidecarYaml } from './fixtures/hop-configs.mjs';
import { alive, checkOk, checkRefusesAnonymous, curl, envCount, findTool, httpGetStatus, logTail, startServer, tcpProbe, toolVersion } from './fixtures/hop-procs.mjs';
import { soakPolicyYaml } from './fixtures/soak-policy.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MESHWARD = join(ROOT, 'bin/meshward.js');
const REPORT_LUA = join(ROOT, 'bench/fixtures/hop-report.lua');
/** How long a sidecar may take to show a rotation or a reload before it counts as not observed. */
const OBSERVE_TIMEOUT_MS = 5_000;
/** No rotation or reload is started later than this before the load ends, so that it can still be observed under load. */
const OBSERVE_MARGIN_S = 5;
const MEMORY_BAR = 0.2;

const env = process.env;
const count = (name, fallback) => envCount(name, fallback, fatal);
const cfg = {
  soakS: count('BENCH_SOAK_S', 300),
  rotateS: count('BENCH_ROTATE_S', 10),
  reloadS: count('BENCH_RELOAD_S', 30),
  connections: count('BENCH_CONNECTIONS', 16),
  warmupS: count('BENCH_SOAK_WARMUP_S', 15),
  threads: count('BENCH_THREADS', 1),
  probeConcurrency: count('BENCH_PROBE_CONCURRENCY', 2),
  sidecarNodeArgs: (env.BENCH_SIDECAR_NODE_ARGS ?? '').split(' ').filter(Boolean),
};

function fatal(message) {
  console.error(`soak: ${message}`);
  process.exit(1);
}

const t0 = performance.now();
const clock = () => ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
const note = (message) => console.error(`# ${clock()} s  ${message}`);

/** Resident memory of a process in KiB (VmRSS from /proc/PID/status); undefined once it has gone. */
function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The sidecar's log as parsed pino lines (each sidecar logs JSON to its stderr, which goes to its log file). */
function logRecords(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const records = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      // a line still being written
    }
  }
  return records;
}

/** `meshward ca issue` over the same files; resolves the new serial it printed. A tracked child, so Ctrl-C stops it too. */
async function issue({ caDir, work, name, spiffeId, seq }) {
  const logFile = join(work, `issue-${name}-${seq}.out`);
  const proc = startChild(process.execPath, [MESHWARD, 'ca', 'issue', '--dir', caDir, '--spiffe-id', spiffeId, '--out', join(caDir, name)], { cwd: ROOT, logFile });
  const { code, signal } = await proc.exited;
  await proc.stop(1000);
  const out = readFileSync(logFile, 'utf8');
  const serial = /^\s*serial\s+(\S+)/m.exec(out)?.[1];
  if (code !== 0 || !serial) throw new Error(`meshward ca issue for ${name} failed (exit ${code ?? signal}): ${out.trim()}`);
  return serial;
}

/** The serial of the SVID a sidecar has in use, from its admin listener. */
function adminSerial(adminPort) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`http://127.0.0.1:${adminPort}/certs`, { agent: false, timeout: 2000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.once('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')).serial);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', reject);
    req.end();
  });
}

/** Polls until `check` resolves true, for at most `timeoutMs`; resolves whether it did. */
async function pollUntil(check, timeoutMs = OBSERVE_TIMEOUT_MS, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return true;
    } catch {
      // not yet
    }
    await sleep(everyMs);
  }
  return false;
}

/** Serial numbers compare as the sidecar prints them (Node's X509Certificate: upper-case hex); the CLI's may differ in case or leading zeros. */
const sameSerial = (a, b) => typeof a === 'string' && typeof b === 'string' && a.replace(/^0+/, '').toUpperCase() === b.replace(/^0+/, '').toUpperCase();

/** One request through the hop with a keep-alive agent: resolves { status, body } or rejects. */
function hopRequest(agent, url, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, method, headers: { host: ROUTE_HOST }, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error('timed out after 5 s')));
    req.once('error', reject);
    req.end();
  });
}

/** Writes the file the way a ConfigMap update or an editor does: a new file renamed over the old one. */
function replaceFile(path, text) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

async function setUp(work) {
  const caDir = join(work, 'ca');
  const meshward = (...args) => execFileSync(process.execPath, [MESHWARD, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    meshward('ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir);
    meshward('ca', 'issue', '--dir', caDir, '--spiffe-id', WEB_ID, '--out', join(caDir, 'web'));
    meshward('ca', 'issue', '--dir', caDir, '--spiffe-id', ORDERS_ID, '--out', join(caDir, 'orders'));
  } catch (err) {
    throw new Error(`making the certificates with meshward's CA failed: ${err.stderr?.toString() || err.message}`);
  }

  const procs = [];
  const nginxDir = join(work, 'nginx');
  mkdirSync(nginxDir);
  const nginxPort = await freePort();
  writeFileSync(join(nginxDir, 'nginx.conf'), nginxConfig({ dir: nginxDir, port: nginxPort }));
  procs.push(
    await startServer('nginx', findTool('nginx'), ['-p', nginxDir, '-e', join(nginxDir, 'error.log'), '-c', join(nginxDir, 'nginx.conf')], {
      logFile: join(nginxDir, 'stderr.log'),
      probe: () => tcpProbe(nginxPort),
    }),
  );

  const dir = join(work, 'meshward');
  mkdirSync(dir);
  // The policy gets a directory of its own, as a mounted ConfigMap has: the sidecar watches the policy's whole
  // directory and restarts its debounce on every event there, so next to the busy audit logs a change would never
  // settle and never be reloaded (see "## Soak" in README.md).
  mkdirSync(join(dir, 'policy'));
  const policyPath = join(dir, 'policy', 'policy.yaml');
  // Every variant must pass the checker, not only the first: check the first and one later one.
  for (const n of [1, 0]) {
    writeFileSync(policyPath, soakPolicyYaml(n));
    const check = spawnSync(process.execPath, [MESHWARD, 'policy', 'check', policyPath], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`meshward policy check ${policyPath} failed: ${check.stdout}${check.stderr}`);
  }
  const ports = { inbound: await freePort(), outbound: await freePort(), ordersAdmin: await freePort(), webAdmin: await freePort() };
  writeFileSync(
    join(dir, 'orders.yaml'),
    ordersSidecarYaml({ caDir, inboundPort: ports.inbound, appPort: nginxPort, policyPath, adminPort: ports.ordersAdmin, auditPath: join(dir, 'orders-audit.jsonl') }),
  );
  writeFileSync(
    join(dir, 'web.yaml'),
    webSidecarYaml({ caDir, outboundPort: ports.outbound, ordersInboundPort: ports.inbound, adminPort: ports.webAdmin, auditPath: join(dir, 'web-audit.jsonl') }),
  );
  const sidecars = {};
  for (const [name, adminPort, spiffeId] of [['orders', ports.ordersAdmin, ORDERS_ID], ['web', ports.webAdmin, WEB_ID]]) {
    const readyz = `http://127.0.0.1:${adminPort}/readyz`;
    const proc = await startServer(`meshward sidecar (${name})`, process.execPath, [...cfg.sidecarNodeArgs, MESHWARD, 'sidecar', '--config', join(dir, `${name}.yaml`)], {
      logFile: join(dir, `${name}.log`),
      env: { MESHWARD_LOG_LEVEL: 'info' },
      probe: async () => {
        const status = await httpGetStatus(readyz);
        if (status !== 200) throw new Error(`GET ${readyz}: HTTP ${status}`);
      },
    });
    procs.push(proc);
    sidecars[name] = { name, proc, adminPort, spiffeId, pid: proc.child.pid, logFile: proc.logFile };
  }
  const url = `http://127.0.0.1:${ports.outbound}/`;
  checkRefusesAnonymous(ports.inbound, "orders's inbound sidecar");
  checkOk(url);
  const denied = curl(['-X', 'POST', '--data', '', '-o', '/dev/null', '-H', `Host: ${ROUTE_HOST}`, url]);
  if (denied.status !== 403) throw new Error(`POST through the hop: expected 403 from the policy (it allows only GET), got exit ${denied.code}, HTTP ${denied.status || '-'} ${denied.stderr}`);
  return { caDir, url, procs, sidecars, policyPath };
}

function startWrk({ url, work }) {
  const logFile = join(work, 'wrk.out');
  const args = ['-t', String(cfg.threads), '-c', String(cfg.connections), '-d', `${cfg.soakS}s`, '-s', REPORT_LUA, '-H', `Host: ${ROUTE_HOST}`, url];
  const proc = startChild(findTool('wrk'), args, { cwd: work, logFile });
  const result = (async () => {
    let timer;
    const finished = await Promise.race([proc.exited, new Promise((resolve) => (timer = setTimeout(resolve, (cfg.soakS + 30) * 1000)))]);
    clearTimeout(timer);
    await proc.stop(1000);
    const output = readFileSync(logFile, 'utf8');
    if (!finished) throw new Error(`wrk did not finish within ${cfg.soakS + 30} s:\n${output}`);
    const line = output.split('\n').find((l) => l.startsWith('HOP-RESULT '));
    if (!line) throw new Error(`wrk (exit ${finished.code ?? finished.signal}) printed no result:\n${output}`);
    return JSON.parse(line.slice('HOP-RESULT '.length));
  })();
  return { proc, result };
}

/** The Node client: a few keep-alive workers in a closed loop, recording every failure with its time. */
function startProbe(url) {
  const agent = new Agent({ keepAlive: true, maxSockets: cfg.probeConcurrency });
  const state = { running: true, requests: 0, failures: [] };
  const worker = async () => {
    while (state.running) {
      try {
        const res = await hopRequest(agent, url);
        state.requests++;
        if (res.status !== 200 || res.body !== 'ok\n') state.failures.push({ at: clock(), what: `HTTP ${res.status} ${JSON.stringify(res.body.slice(0, 200))}` });
      } catch (err) {
        state.requests++;
        state.failures.push({ at: clock(), what: err.message });
        await sleep(10);
      }
    }
  };
  const done = Promise.all(Array.from({ length: cfg.probeConcurrency }, worker));
  return {
    state,
    async stop() {
      state.running = false;
      await done;
      agent.destroy();
    },
  };
}

/** Runs `task(i)` at start + every·i seconds for i = 1, 2, ... while that leaves OBSERVE_MARGIN_S before the end; one at a time. */
async function every(startMs, everyS, task) {
  for (let i = 1; i * everyS + OBSERVE_MARGIN_S <= cfg.soakS; i++) {
    const wait = startMs + i * everyS * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    await task(i);
  }
}

async function main() {
  if (cfg.warmupS >= cfg.soakS) fatal(`BENCH_SOAK_WARMUP_S (${cfg.warmupS}) must be shorter than BENCH_SOAK_S (${cfg.soakS})`);
  for (const [tool, hint] of [['wrk', 'apt-get install wrk'], ['nginx', 'apt-get install nginx'], ['curl', 'apt-get install curl']]) {
    if (!findTool(tool)) fatal(`${tool} not found (${hint})`);
  }
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) fatal('dist/ is missing: run `npm run build` first');
  if (!existsSync('/proc/self/status')) fatal('needs Linux /proc for resident memory');

  const work = tempDir('meshward-soak-');
  chmodSync(work, 0o700);
  note(`setting up in ${work}`);
  const problems = [];
  const stats = { rotationsMade: 0, rotationsSeen: 0, reloadsMade: 0, reloadsSeen: 0, authzChecks: 0 };
  const memory = {};
  let procs = [];
  let sidecars;
  let wrkResult;
  let probeState;
  try {
    const hop = await setUp(work);
    procs = hop.procs;
    sidecars = hop.sidecars;
    const both = [sidecars.web, sidecars.orders];
    note(`hop up: ${hop.url} (web pid ${sidecars.web.pid}, orders pid ${sidecars.orders.pid}); load for ${cfg.soakS} s`);

    const start = performance.now();
    const wrk = startWrk({ url: hop.url, work });
    const probe = startProbe(hop.url);
    probeState = probe.state;
    const checkAgent = new Agent({ keepAlive: false });

    const rotations = every(start, cfg.rotateS, async (i) => {
      stats.rotationsMade++;
      const issued = await Promise.all(both.map((s) => issue({ caDir: hop.caDir, work, name: s.name, spiffeId: s.spiffeId, seq: i })));
      const seen = await Promise.all(both.map((s, k) => pollUntil(async () => sameSerial(await adminSerial(s.adminPort), issued[k]))));
      if (seen.every(Boolean)) {
        stats.rotationsSeen++;
      } else {
        const missed = both.filter((_, k) => !seen[k]).map((s) => s.name);
        problems.push(`rotation ${i}: ${missed.join(' and ')} did not show the new serial within ${OBSERVE_TIMEOUT_MS} ms`);
      }
      note(`rotation ${i}: web ${issued[0]}, orders ${issued[1]}${seen.every(Boolean) ? ' — both in use' : ' — NOT OBSERVED'}`);
    });

    const reloads = every(start, cfg.reloadS, async (i) => {
      stats.reloadsMade++;
      const logFile = sidecars.orders.logFile;
      const reloaded = () => logRecords(logFile).filter((r) => r.msg === 'policy reloaded').length;
      const before = reloaded();
      replaceFile(hop.policyPath, soakPolicyYaml(i));
      const seen = await pollUntil(() => reloaded() > before);
      const rejected = logRecords(logFile).filter((r) => r.msg?.startsWith('policy rejected'));
      if (rejected.length) problems.push(`reload ${i}: orders rejected the policy: ${rejected.at(-1).error}`);
      // Equivalent means deciding the same: web may still GET, and still may not POST.
      const [get, post] = await Promise.all([hopRequest(checkAgent, hop.url, 'GET'), hopRequest(checkAgent, hop.url, 'POST')]).catch((err) => [{ status: err.message }, {}]);
      stats.authzChecks++;
      if (get.status !== 200 || post.status !== 403) problems.push(`reload ${i}: after the reload GET answered ${get.status} (want 200) and POST ${post.status} (want 403)`);
      if (seen) stats.reloadsSeen++;
      else problems.push(`reload ${i}: orders logged no "policy reloaded" within ${OBSERVE_TIMEOUT_MS} ms`);
      note(`policy reload ${i}: ${seen ? 'in force' : 'NOT OBSERVED'}; GET ${get.status}, POST ${post.status}`);
    });

    const sample = () => Object.fromEntries(both.map((s) => [s.name, rssKiB(s.pid)]));
    const memoryWatch = (async () => {
      const peak = { web: 0, orders: 0 };
      const track = (m) => {
        for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k] ?? 0);
      };
      const at = (s) => sleep(Math.max(0, start + s * 1000 - performance.now()));
      await at(cfg.warmupS);
      memory.start = sample();
      track(memory.start);
      note(`memory after the warm-up: web ${memory.start.web} KiB, orders ${memory.start.orders} KiB`);
      // Samples every 5 s for the peak; the end sample is taken a second before the load stops, still under load.
      for (let s = cfg.warmupS + 5; s < cfg.soakS - 1; s += 5) {
        await at(s);
        track(sample());
      }
      await at(cfg.soakS - 1);
      memory.end = sample();
      track(memory.end);
      memory.peak = peak;
    })();

    wrkResult = await wrk.result;
    await Promise.all([rotations, reloads, memoryWatch]);
    await probe.stop();
    checkAgent.destroy();
    const dead = procs.filter((p) => !alive(p));
    if (dead.length) problems.push(...dead.map((p) => `${p.what} exited during the run (code ${p.child.exitCode ?? p.child.signalCode}):\n${logTail(p.logFile)}`));

    // What the sidecars said about themselves: rejected identity files and warnings or errors of any kind.
    for (const s of both) {
      const records = logRecords(s.logFile);
      s.identityReloads = records.filter((r) => r.msg === 'identity rotated; new connections use it').length;
      s.rejectedFiles = records.filter((r) => r.msg?.startsWith('identity files rejected')).length;
      s.warnings = records.filter((r) => ['warn', 'error', 'fatal'].includes(r.level) || r.level >= 40); // labels: the logger prints them as words
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop(5000)));
  }
  return { stats, memory, wrk: wrkResult, probe: probeState, problems, sidecars };
}

function report({ stats, memory, wrk, probe, problems, sidecars }) {
  const e = wrk.errors;
  const wrkFailed = e.connect + e.read + e.write + e.timeout + e.status;
  const failed = wrkFailed + probe.failures.length;
  const served = wrk.requests - e.status + probe.requests - probe.failures.length;
  const seconds = wrk.durationUs / 1e6;
  const growth = (name) => (memory.end[name] - memory.start[name]) / memory.start[name];
  const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
  const memOk = ['web', 'orders'].every((n) => Number.isFinite(growth(n)) && growth(n) < MEMORY_BAR);
  const rotOk = stats.rotationsMade > 0 && stats.rotationsSeen === stats.rotationsMade;
  const relOk = stats.reloadsMade > 0 && stats.reloadsSeen === stats.reloadsMade;
  const verdict = (ok) => (ok ? 'PASS' : 'FAIL');
  const lines = [
    `Sidecar soak: ${cfg.soakS} s of wrk (${cfg.threads} thread, ${cfg.connections} connections) + a ${cfg.probeConcurrency}-worker Node client through web → orders; SVIDs re-issued every ${cfg.rotateS} s, policy replaced every ${cfg.reloadS} s`,
    `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${toolVersion('wrk', ['-v'])}; ${toolVersion(findTool('nginx'), ['-v'])}`,
    '',
    `requests served   ${served} (wrk ${wrk.requests - e.status} in ${seconds.toFixed(1)} s = ${((wrk.requests - e.status) / seconds).toFixed(0)} req/s; Node client ${probe.requests - probe.failures.length})`,
    `failed requests   ${failed}  ${verdict(failed === 0)} (must be 0; wrk: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}, HTTP >= 400 ${e.status}; Node client: ${probe.failures.length})`,
    `wrk latency       p50 ${(wrk.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(wrk.latencyUs.p99 / 1000).toFixed(2)} ms, max ${(wrk.latencyUs.max / 1000).toFixed(2)} ms`,
    `SVID rotations    ${stats.rotationsSeen} of ${stats.rotationsMade} observed on both sidecars  ${verdict(rotOk)} (web logged ${sidecars.web.identityReloads} identity changes, orders ${sidecars.orders.identityReloads}; identity file sets refused mid-write: web ${sidecars.web.rejectedFiles}, orders ${sidecars.orders.rejectedFiles})`,
    `policy reloads    ${stats.reloadsSeen} of ${stats.reloadsMade} observed ("policy reloaded" on orders's stderr), each followed by GET 200 / POST 403  ${verdict(relOk)}`,
    `resident memory   (VmRSS at ${cfg.warmupS} s → ${cfg.soakS - 1} s, peak)`,
    ...['web', 'orders'].map(
      (n) => `  ${n.padEnd(7)} ${mib(memory.start[n])} → ${mib(memory.end[n])}, peak ${mib(memory.peak[n])}: ${(growth(n) * 100 >= 0 ? '+' : '')}${(growth(n) * 100).toFixed(1)}%  ${verdict(growth(n) < MEMORY_BAR)} (< ${MEMORY_BAR * 100}%)`,
    ),
  ];
  for (const s of Object.values(sidecars)) {
    const byMsg = new Map();
    for (const r of s.warnings) byMsg.set(r.msg, (byMsg.get(r.msg) ?? 0) + 1);
    if (byMsg.size) lines.push(`${s.name} logged warnings/errors: ${[...byMsg].map(([m, n]) => `${n}× "${m}"`).join(', ')}`);
    // Each one in full (the first few), so that a cause can be told from a shutdown artefact.
    for (const r of s.warnings.slice(0, 5)) {
      const { level: _level, msg, pid: _pid, hostname: _hostname, ...rest } = r;
      lines.push(`  ${s.name} ${typeof r.time === 'number' ? new Date(r.time).toISOString() : ''} ${msg}: ${JSON.stringify(rest)}`);
    }
  }
  if (probe.failures.length) {
    lines.push('', `!!! Node client failures (first 10 of ${probe.failures.length}):`, ...probe.failures.slice(0, 10).map((f) => `    ${f.at} s  ${f.what}`));
  }
  if (problems.length) lines.push('', ...problems.map((p) => `!!! ${p}`));
  const ok = failed === 0 && memOk && rotOk && relOk && problems.length === 0;
  lines.push('', `soak ${ok ? 'PASSED' : 'FAILED'}`);
  console.log(lines.join('\n'));
  return ok;
}

// process.exit, not exitCode: a child's stop() leaves its grace timer pending. The exit handler of ca-procs.mjs
// stops any child still running and removes the temp dir, Ctrl-C included.
try {
  process.exit(report(await main()) ? 0 : 1);
} catch (err) {
  console.error(`soak failed: ${err.stack ?? err}`);
  process.exit(1);
}

// The CA benchmark: certificates signed per second by meshward (in-process signer, and `Sign` over gRPC/TLS with
// 16 concurrent clients against a `meshward ca serve` child) next to Go's cfssl (`cfssl serve`, 16 concurrent
// HTTP clients) in the same run. The bar (issue 2): meshward's gRPC rate at least cfssl's.
//
//   npm run build && node bench/ca-sign.mjs
//
// Settings (environment): BENCH_DURATION_S (10), BENCH_WARMUP_S (2), BENCH_CONCURRENCY (16), BENCH_CSR_POOL (64),
// BENCH_PHASES (signer,authority,renew,renew-lean,token,floor,renew-info,cfssl; renew-lean = renewal with a node:http2 client as lean as cfssl's; floor = GetBundle, the gRPC/TLS cost alone), BENCH_CFSSL (cfssl), BENCH_TOKENS (pre-minted join
// tokens; default from the renewal rate), BENCH_SERVER_NODE_ARGS (extra node flags for the CA server, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_CA_WORKERS (`ca serve --workers`; default: the server's own),
// BENCH_CA_ARGS (more `ca serve` arguments, e.g. "--audit /dev/shm/audit.log" to take the disk out of the figures).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leanSignClient } from './ca-lean-client.mjs';
import { runLoad, runSync, processCpuMs } from './ca-load.mjs';
import { cfsslAvailable, startCfssl } from './ca-cfssl.mjs';
import { freePort, startChild, tempDir, waitReady } from './ca-procs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TRUST_DOMAIN = 'example.org';

const env = process.env;
const cfg = {
  durationMs: Number(env.BENCH_DURATION_S ?? 10) * 1000,
  warmupMs: Number(env.BENCH_WARMUP_S ?? 2) * 1000,
  concurrency: Number(env.BENCH_CONCURRENCY ?? 16),
  csrPool: Number(env.BENCH_CSR_POOL ?? 64),
  phases: new Set((env.BENCH_PHASES ?? 'signer,authority,renew,renew-lean,token,floor,renew-info,cfssl').split(',').map((s) => s.trim())),
  cfssl: env.BENCH_CFSSL ?? 'cfssl',
  tokens: env.BENCH_TOKENS ? Number(env.BENCH_TOKENS) : undefined,
  serverNodeArgs: (env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
  serverArgs: [...(env.BENCH_CA_WORKERS !== undefined ? ['--workers', env.BENCH_CA_WORKERS] : []), ...(env.BENCH_CA_ARGS ?? '').split(' ').filter(Boolean)],
};

let ca;
let caWireTypes;
let CA_SERVICE;
try {
  ca = await import('../dist/ca/index.js');
  ({ caWireTypes, CA_SERVICE } = await import('../dist/ca/proto.js'));
} catch (err) {
  console.error(`cannot load ../dist/ca/index.js (${err.message}); run \`npm run build\` first`);
  process.exit(1);
}
const { Authority, CaClient, SvidSigner, checkCsr, loadCa, makeCsr, mintJoinToken } = ca;

const rows = [];
const row = (name, r, note = '') => {
  rows.push({ name, ...r, note });
  console.error(`  ${name}: ${r.rate.toFixed(0)}/s${r.errors ? `, ${r.errors} errors (first: ${r.firstError?.message})` : ''}`);
};
const cpuNote = (r) => [r.serverCpu !== undefined ? `server ${pct(r.serverCpu)}` : '', r.clientCpu !== undefined ? `client ${pct(r.clientCpu)}` : ''].filter(Boolean).join(', ');
const pct = (x) => `${(x * 100).toFixed(0)}% CPU`;

async function main() {
  const work = tempDir('meshward-ca-bench-');
  const caDir = join(work, 'ca');
  console.error(`# setting up in ${work}`);
  execFileSync(process.execPath, [join(ROOT, 'bin/meshward.js'), 'ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const bundlePem = readFileSync(join(caDir, 'bundle.pem'), 'utf8');

  // Pre-made CSRs (P-256, empty subject, no extensions), reused round-robin: the clients measure the server.
  const csrs = await Promise.all(Array.from({ length: cfg.csrPool }, () => makeCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey)));
  let next = 0;
  const nextCsr = () => csrs[next++ % csrs.length];

  const authority = await Authority.open(caDir);
  // The renewing clients' current SVIDs, issued offline as `meshward ca issue` would.
  const identities = [];
  for (let i = 0; i < cfg.concurrency; i++) {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const svid = await authority.sign({ csr: await makeCsr(key), spiffeId: `spiffe://${TRUST_DOMAIN}/bench/client-${i}`, ttlSeconds: 3600 }, { method: 'operator' });
    identities.push({ certChainPem: svid.chainPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }) });
  }

  if (cfg.phases.has('signer')) {
    console.error('# signer alone (in-process, one thread)');
    const material = await loadCa(caDir);
    const signer = new SvidSigner({ certificate: material.signingCert, chain: material.chain, privateKey: material.privateKey });
    const notBefore = new Date(Date.now() - 30_000);
    const notAfter = new Date(Date.now() + 3600_000);
    const spiffeId = `spiffe://${TRUST_DOMAIN}/bench/signer`;
    const opts = { warmupMs: Math.min(cfg.warmupMs, 1000), durationMs: Math.min(cfg.durationMs, 5000) };
    row('signer: checkCsr + SvidSigner.sign', runSync({ ...opts, fn: () => signer.sign({ spki: checkCsr(nextCsr()).spki, spiffeId, notBefore, notAfter }) }));
    row('  of which checkCsr (ECDSA verify)', runSync({ ...opts, fn: () => checkCsr(nextCsr()) }));
    const spki = checkCsr(csrs[0]).spki;
    row('  of which SvidSigner.sign (ECDSA sign)', runSync({ ...opts, fn: () => signer.sign({ spki, spiffeId, notBefore, notAfter }) }));
  }
  if (cfg.phases.has('authority')) {
    console.error(`# Authority.sign, operator caller, ${cfg.concurrency} concurrent (group-committed fsync)`);
    const r = await runLoad({
      ...cfg,
      request: async (i) => {
        await authority.sign({ csr: nextCsr(), spiffeId: `spiffe://${TRUST_DOMAIN}/bench/op-${i}`, ttlSeconds: 3600 }, { method: 'operator' });
        return true;
      },
    });
    row(`Authority.sign (operator, ${cfg.concurrency} in flight)`, r, 'incl. issuance record + fsync');
  }
  await authority.close();

  let renewRate;
  const serverRuns = [
    { level: 'warn', phases: ['renew', 'renew-lean', 'token', 'floor'].filter((p) => cfg.phases.has(p)) },
    { level: 'info', phases: ['renew-info', 'token-info'].filter((p) => cfg.phases.has(p)) },
  ];
  for (const run of serverRuns) {
    if (run.phases.length === 0) continue;
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const logFile = join(work, `ca-serve-${run.level}.log`);
    console.error(`# meshward ca serve on ${address}, MESHWARD_LOG_LEVEL=${run.level}, log to ${logFile}`);
    const server = startChild(process.execPath, [...cfg.serverNodeArgs, join(ROOT, 'bin/meshward.js'), 'ca', 'serve', '--dir', caDir, '--listen', address, ...cfg.serverArgs], {
      cwd: ROOT,
      env: { MESHWARD_LOG_LEVEL: run.level },
      logFile,
    });
    try {
      const probe = new CaClient({ address, trustDomain: TRUST_DOMAIN, bundlePem });
      await waitReady(() => probe.getBundle(1000), { child: server.child, what: 'meshward ca serve' });
      probe.close();
      const serverCpuMs = () => processCpuMs(server.child.pid);
      const label = run.level === 'info' ? ', logging at info' : '';

      // One client per renewing identity, each in a closed loop calling `call`; closed when the phase ends.
      const renewingClients = () => identities.map((identity) => new CaClient({ address, trustDomain: TRUST_DOMAIN, bundlePem, identity }));
      const loadThrough = async (clients, call) => {
        try {
          return await runLoad({ ...cfg, serverCpuMs, request: async (i) => (await call(clients[i]), true) });
        } finally {
          for (const c of clients) c.close();
        }
      };

      for (const phase of run.phases) {
        if (phase === 'floor') {
          console.error(`# GetBundle over gRPC/TLS, ${cfg.concurrency} clients: the transport's cost with no signing`);
          const r = await loadThrough(renewingClients(), (c) => c.getBundle());
          row('meshward GetBundle (gRPC/TLS floor, no signing)', r, cpuNote(r));
        } else if (phase === 'renew-lean') {
          console.error(`# Sign over gRPC/TLS: renewal over mTLS, ${cfg.concurrency} lean node:http2 clients (as lean as the cfssl phase's)`);
          const { SignRequest } = caWireTypes();
          const requests = csrs.map((csr) => Buffer.from(SignRequest.encode({ csr: Buffer.from(csr), ttlSeconds: 0, joinToken: '', spiffeId: '' }).finish()));
          const clients = await Promise.all(identities.map((identity) => leanSignClient({ address, bundlePem, identity, path: `/${CA_SERVICE}/Sign`, requests })));
          const r = await loadThrough(clients, (c) => c.sign());
          row('meshward Sign, renewal (mTLS), lean client', r, cpuNote(r));
        } else if (phase.startsWith('renew')) {
          console.error(`# Sign over gRPC/TLS: renewal over mTLS, ${cfg.concurrency} clients${label}`);
          const r = await loadThrough(renewingClients(), (c) => c.sign({ csr: nextCsr() }));
          renewRate ??= r.rate;
          row(`meshward Sign, renewal (mTLS)${label}`, r, cpuNote(r));
        } else {
          const secret = Buffer.from(readFileSync(join(caDir, 'token.key'), 'utf8').trim(), 'base64url');
          const count = cfg.tokens ?? Math.ceil(Math.max(renewRate ?? 3000, 1000) * 1.5 * ((cfg.warmupMs + cfg.durationMs) / 1000)) + 1000;
          console.error(`# Sign over gRPC/TLS: bootstrap with join tokens, ${cfg.concurrency} clients${label} (minting ${count} tokens first)`);
          const tokens = [];
          for (let i = 0; i < count; i++) {
            tokens.push(await mintJoinToken(secret, { trustDomain: TRUST_DOMAIN, spiffeId: `spiffe://${TRUST_DOMAIN}/bench/joiner-${i % cfg.concurrency}`, ttlSeconds: 900 }));
          }
          let used = 0;
          const clients = identities.map(() => new CaClient({ address, trustDomain: TRUST_DOMAIN, bundlePem }));
          const r = await runLoad({
            ...cfg,
            serverCpuMs,
            request: async (i) => {
              if (used >= tokens.length) return false;
              await clients[i].sign({ csr: nextCsr(), joinToken: tokens[used++] });
              return true;
            },
          });
          for (const c of clients) c.close();
          row(`meshward Sign, join token${label}`, r, [cpuNote(r), r.exhausted ? 'RAN OUT OF TOKENS: raise BENCH_TOKENS' : ''].filter(Boolean).join(', '));
        }
      }
    } finally {
      await server.stop();
    }
  }

  if (cfg.phases.has('cfssl')) {
    if (!cfsslAvailable(cfg.cfssl)) {
      console.error(`# cfssl: "${cfg.cfssl}" not found (apt-get install golang-cfssl, or set BENCH_CFSSL); skipped`);
    } else {
      const dir = tempDir('meshward-ca-bench-cfssl-');
      console.error(`# cfssl serve, ${cfg.concurrency} keep-alive HTTP clients`);
      const cfssl = await startCfssl({ bin: cfg.cfssl, dir });
      try {
        await cfssl.ready(csrs[0]);
        cfssl.useCsrs(csrs);
        let k = 0;
        const r = await runLoad({
          ...cfg,
          serverCpuMs: () => processCpuMs(cfssl.child.pid),
          request: async () => {
            await cfssl.sign(k++);
            return true;
          },
        });
        row('cfssl serve /api/v1/cfssl/sign (HTTP)', r, cpuNote(r));
      } finally {
        await cfssl.stop();
      }
    }
  }

  printTable();
}

// CPU time per certificate is the figure that survives a shared machine: a starved server is slow, not costly.
const cpuPerCert = (r) => (r.serverCpu !== undefined ? (r.serverCpu * 1000) / r.rate : NaN);

function printTable() {
  const cfssl = rows.find((r) => r.name.startsWith('cfssl'));
  const renew = rows.find((r) => r.name === 'meshward Sign, renewal (mTLS)');
  const token = rows.find((r) => r.name === 'meshward Sign, join token');
  const renewLean = rows.find((r) => r.name === 'meshward Sign, renewal (mTLS), lean client');
  const renewInfo = rows.find((r) => r.name.startsWith('meshward Sign, renewal') && r.name.includes('info'));
  const ms = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  const lines = [
    `CA benchmark: ${cfg.concurrency} concurrent clients, ${cfg.warmupMs / 1000} s warm-up + ${cfg.durationMs / 1000} s per phase, ${cfg.csrPool} pre-made P-256 CSRs`,
    `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    '',
    `| ${'phase'.padEnd(48)} | certs/s | p50 ms | p99 ms | server CPU ms/cert | errors | notes`,
    `|${'-'.repeat(50)}|--------:|-------:|-------:|-------------------:|-------:|------`,
    ...rows.map(
      (r) =>
        `| ${r.name.padEnd(48)} | ${r.rate.toFixed(0).padStart(7)} | ${ms(r.p50).padStart(6)} | ${ms(r.p99).padStart(6)} | ${ms(cpuPerCert(r)).padStart(18)} | ${String(r.errors).padStart(6)} | ${r.note}`,
    ),
    '',
  ];
  if (cfssl) {
    // Issue 2's bar is 1.0x; issue 12 set renewal through the lean client (the server's cost, not grpc-js's) at 0.5x.
    for (const [name, r, bar] of [['renewal', renew, 1], ['renewal, lean client', renewLean, 0.5], ['join token', token, 1]]) {
      if (!r) continue;
      const ratio = r.rate / cfssl.rate;
      const cost = cpuPerCert(r) / cpuPerCert(cfssl);
      lines.push(`meshward(${name}) / cfssl = ${ratio.toFixed(2)}x  ${ratio >= bar ? 'meets' : 'BELOW'} the bar (>= ${bar.toFixed(1)}x); server CPU per cert ${cost.toFixed(1)}x cfssl's`);
    }
  }
  if (renew && renewInfo) {
    const extra = (cpuPerCert(renewInfo) / cpuPerCert(renew) - 1) * 100;
    lines.push(`logging each issuance at info: server CPU per cert ${extra >= 0 ? '+' : ''}${extra.toFixed(0)}% against warn (noisy: compare several runs)`);
  }
  console.log(lines.join('\n'));
}

try {
  await main();
} catch (err) {
  console.error(`benchmark failed: ${err.stack ?? err}`);
  process.exitCode = 1;
}

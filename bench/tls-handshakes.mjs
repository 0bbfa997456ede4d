// What a new mTLS connection costs Node.js itself: the floor under a sidecar's cold start (issue 12). When load
// arrives at a fresh pair, the originating sidecar opens one connection per concurrent request (16 in hop.mjs's
// fixed-rate load) to the terminating one, all at once. This runs the same handshakes with nothing else: a bare
// node:tls server in a child process (mTLS, TLS 1.3, SVIDs from `meshward ca issue`), and a client in this process
// that opens BATCH connections at once, sends a byte and waits for the answer; ROUNDS times, after a first round
// that warms both ends; printed: each connection's time to its first answer (median and slowest of the batch).
// Then the same with TLS session resumption (each connection resumes a session of the first
// round), which skips the certificates' signatures and checks; and the full handshakes with the client offering
// X25519 or P-256 alone instead of OpenSSL 3.5's default, the post-quantum hybrid X25519MLKEM768.
//
//   npm run build && node bench/tls-handshakes.mjs
//
// Settings (environment): BENCH_TLS_BATCH (16), BENCH_TLS_ROUNDS (5).
import { execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createSecureContext } from 'node:tls';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { tempDir } from './ca-procs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BATCH = Number(process.env.BENCH_TLS_BATCH ?? 16);
const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? 5);

if (process.argv[2] === 'serve') {
  // The child: a bare mTLS server that answers each byte with a byte.
  const { createServer } = await import('node:tls');
  const dir = process.argv[3];
  const server = createServer(
    { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')), ca: readFileSync(join(dir, 'bundle.pem')), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (socket) => {
      socket.on('data', () => socket.write('k'));
      socket.on('error', () => undefined);
    },
  );
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const dir = tempDir('meshward-tls-bench-');
  const meshward = (...args) => execFileSync(process.execPath, [join(ROOT, 'bin/meshward.js'), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  meshward('ca', 'init', '--trust-domain', 'example.org', '--dir', dir);
  meshward('ca', 'issue', '--dir', dir, '--spiffe-id', 'spiffe://example.org/ns/bench/sa/server', '--out', join(dir, 'server'));
  meshward('ca', 'issue', '--dir', dir, '--spiffe-id', 'spiffe://example.org/ns/bench/sa/client', '--out', join(dir, 'client'));
  const child = fork(fileURLToPath(import.meta.url), ['serve', dir], { stdio: 'inherit' });
  const port = await new Promise((resolve) => child.once('message', resolve));
  // `groups`: the key exchanges the client offers (its ecdhCurve); default: OpenSSL's, X25519MLKEM768 first.
  const contextFor = (groups) =>
    createSecureContext({ key: readFileSync(join(dir, 'client.key')), cert: readFileSync(join(dir, 'client.pem')), ca: readFileSync(join(dir, 'bundle.pem')), minVersion: 'TLSv1.3', ...(groups ? { ecdhCurve: groups } : {}) });
  const contexts = new Map([undefined, 'X25519', 'P-256'].map((g) => [g, contextFor(g)]));
  let group;

  /** One connection: handshake, a byte each way. Resolves with its time and its session (for resumption). */
  const once = (session) =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      let ticket;
      const socket = connect({ host: '127.0.0.1', port, secureContext: contexts.get(group), servername: 'localhost', checkServerIdentity: () => undefined, ...(session ? { session } : {}) }, () => socket.write('x'));
      socket.on('session', (s) => (ticket = s));
      socket.once('data', () => {
        const ms = performance.now() - started;
        const resumed = socket.isSessionReused();
        const negotiated = socket.getEphemeralKeyInfo()?.name;
        // TLS 1.3 sends the ticket after the handshake: wait a moment for it before closing.
        setImmediate(() => {
          socket.destroy();
          resolve({ ms, ticket, resumed, negotiated });
        });
      });
      socket.on('error', reject);
    });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const batch = async (sessions) => {
    const results = await Promise.all(Array.from({ length: BATCH }, (_, i) => once(sessions?.[i])));
    const times = results.map((r) => r.ms);
    return { typical: median(times), slowest: Math.max(...times), results };
  };

  const first = await batch();
  // Full handshakes with each key exchange the client may offer (undefined: OpenSSL's default), in alternating
  // rounds so that machine noise hits them alike.
  const byGroup = new Map([undefined, 'X25519', 'P-256'].map((g) => [g, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const [g, runs] of byGroup) {
      group = g;
      runs.push(await batch());
    }
  }
  group = undefined;
  const full = byGroup.get(undefined);
  const negotiated = full[0].results[0].negotiated;
  const sessions = first.results.map((r) => r.ticket);
  const resumed = [];
  let reused = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const b = await batch(sessions);
    reused += b.results.filter((r) => r.resumed).length;
    resumed.push(b);
  }
  const one = [];
  for (let i = 0; i < 50; i++) one.push((await once()).ms);
  child.kill();

  const cells = (name, typical, slowest) => `| ${name.padEnd(52)} | ${typical.toFixed(1).padStart(11)} | ${slowest.toFixed(1).padStart(10)} |`;
  const row = (name, b) => cells(name, median(b.map((x) => x.typical)), median(b.map((x) => x.slowest)));
  console.log(`node ${process.version}: ${BATCH} mTLS connections at once (TLS 1.3, P-256 SVIDs), client here, server in a child; medians of ${ROUNDS} rounds\n`);
  console.log(`| ${'connections'.padEnd(52)} | ${'median ms'.padStart(11)} | ${'slowest ms'.padStart(10)} |`);
  console.log(`|${'-'.repeat(54)}|${'-'.repeat(12)}:|${'-'.repeat(11)}:|`);
  console.log(cells('first round (both ends cold)', first.typical, first.slowest));
  console.log(row(`full handshakes, warm (${negotiated}, the default)`, full));
  for (const [g, runs] of byGroup) if (g !== undefined) console.log(row(`full handshakes, warm, ${g} only`, runs));
  console.log(row(`resumed sessions (${reused} of ${BATCH * ROUNDS} resumed)`, resumed));
  console.log(`\none connection at a time, warm: median ${median(one).toFixed(2)} ms per connection (handshake + a byte each way)`);
}

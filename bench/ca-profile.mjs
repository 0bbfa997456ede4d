// Where the CA server's main thread spends its time, from a V8 .cpuprofile (node --cpu-prof):
//
//   BENCH_PHASES=renew BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/ca-sign.mjs
//   node bench/ca-profile.mjs /tmp/prof/CPU.*.cpuprofile [--top 25]
//
// Each sample goes to the category of the innermost stack frame that matches one (so native work such as an
// ECDSA verify lands on the JS function that called into it); the rest is "other JS". Also lists the functions
// with the most self time.
import { readFileSync } from 'node:fs';

const CATEGORIES = [
  ['ECDSA verify (CSR proof of possession)', (f) => f.url === 'node:internal/crypto/sig' && /^verify|Verify/.test(f.functionName)],
  ['CSR key import (createPublicKey)', (f) => f.functionName === 'createPublicKey'],
  ['ECDSA sign (leaf)', (f) => f.url === 'node:internal/crypto/sig' && /^sign|Sign/.test(f.functionName)],
  ['other node:crypto (random, hash, X509Certificate)', (f) => f.url.startsWith('node:internal/crypto')],
  ['JWT (jose)', (f) => f.url.includes('/node_modules/jose/')],
  ['logging (pino)', (f) => /\/node_modules\/(pino|sonic-boom|fast-redact|pino-std-serializers|quick-format-unescaped)\//.test(f.url)],
  ['file appends + fsync calls (main-thread part)', (f) => f.url.includes('/dist/ca/append-log.js') || f.url.startsWith('node:internal/fs')],
  ['meshward CSR check / DER / signer (JS)', (f) => /\/dist\/ca\/(csr-check|der|svid-signer|svid-profile)\.js$/.test(f.url)],
  ['meshward other (authority, gRPC service, SPIFFE)', (f) => f.url.includes('/dist/')],
  ['protobuf (de)serialisation', (f) => f.url.includes('/node_modules/protobufjs/') || f.url.includes('/node_modules/@protobufjs/')],
  ['grpc-js', (f) => f.url.includes('/node_modules/@grpc/grpc-js/')],
  ['TLS (node:_tls_wrap, tls)', (f) => /^node:(_tls_wrap|tls|internal\/tls)/.test(f.url)],
  ['HTTP/2 (node core)', (f) => f.url.startsWith('node:internal/http2')],
  ['streams, sockets, timers (node core)', (f) => f.url.startsWith('node:')],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['idle (waiting: I/O, fsync in the thread pool, clients)', (f) => f.functionName === '(idle)'],
  ['native, not attributed to JS (TLS records, libuv, ...)', (f) => f.functionName === '(program)'],
];

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 20;
if (args.length === 0) {
  console.error('usage: node bench/ca-profile.mjs FILE.cpuprofile... [--top N]');
  process.exit(2);
}

for (const file of args) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map();
  const classify = (id) => {
    if (categoryOf.has(id)) return categoryOf.get(id);
    let category = 'other JS';
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur).callFrame;
      const hit = CATEGORIES.find(([, test]) => test(frame));
      if (hit) {
        category = hit[0];
        break;
      }
    }
    categoryOf.set(id, category);
    return category;
  };

  const perCategory = new Map();
  const perFunction = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const category = classify(id);
    perCategory.set(category, (perCategory.get(category) ?? 0) + dt);
    const f = byId.get(id).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    perFunction.set(key, (perFunction.get(key) ?? 0) + dt);
  });
  const idle = perCategory.get(CATEGORIES.find(([n]) => n.startsWith('idle'))[0]) ?? 0;
  const share = (t, of) => `${((100 * t) / of).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${share(total - idle, total).trim()} busy`);
  console.log('\n  share of busy time by category (idle: share of all time)');
  for (const [name, t] of [...perCategory].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${share(t, name.startsWith('idle') ? total : total - idle)}  ${name}`);
  }
  console.log(`\n  top ${top} functions by self time (share of busy time)`);
  for (const [name, t] of [...perFunction].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${share(t, total - idle)}  ${name}`);
  }
}

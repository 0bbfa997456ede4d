// What fills a V8 heap snapshot: self size summed by node type (code, strings, arrays, objects, ...) and by
// constructor or name, largest first. With two snapshots, the growth from the first to the second.
//
//   node bench/heap-summary.mjs SNAPSHOT.heapsnapshot [LATER.heapsnapshot] [--top 30]
//
// Snapshots of a running sidecar: start it with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` (hop.mjs:
// BENCH_MESHWARD_NODE_ARGS) and send it SIGUSR2. A snapshot counts the JS heap only: RSS also holds the node
// binary's pages, the code space outside the heap, malloc'ed memory (OpenSSL, buffers) and GC slack.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
if (!args.length) {
  console.error('usage: node bench/heap-summary.mjs SNAPSHOT.heapsnapshot [LATER.heapsnapshot] [--top N]');
  process.exit(2);
}

/** Self size by type, and by "type: constructor or name" (names of strings and code are cut to 60 characters). */
function summarise(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const nodes = snap.nodes;
  const byType = new Map();
  const byName = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    const name = snap.strings[nodes[i + nameAt]];
    const key = `${type}: ${type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(strings)' : name.slice(0, 60)}`;
    const entry = byName.get(key) ?? { size: 0, count: 0 };
    entry.size += size;
    entry.count++;
    byName.set(key, entry);
  }
  return { total, byType, byName };
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(2)} MB`.padStart(10);
const first = summarise(args[0]);
if (args.length === 1) {
  console.log(`${args[0]}: ${mb(first.total).trim()} in the heap snapshot`);
  console.log('\nby type:');
  for (const [type, size] of [...first.byType].sort((a, b) => b[1] - a[1])) console.log(`  ${mb(size)}  ${type}`);
  console.log(`\nby constructor / name (top ${top}):`);
  for (const [key, e] of [...first.byName].sort((a, b) => b[1].size - a[1].size).slice(0, top)) console.log(`  ${mb(e.size)}  ${String(e.count).padStart(8)}  ${key}`);
} else {
  const later = summarise(args[1]);
  console.log(`${args[0]} → ${args[1]}: ${mb(first.total).trim()} → ${mb(later.total).trim()}`);
  console.log('\ngrowth by type:');
  for (const [type, size] of [...later.byType].map(([t, s]) => [t, s - (first.byType.get(t) ?? 0)]).sort((a, b) => b[1] - a[1])) console.log(`  ${mb(size)}  ${type}`);
  console.log(`\ngrowth by constructor / name (top ${top}):`);
  const growth = [...later.byName].map(([k, e]) => [k, e.size - (first.byName.get(k)?.size ?? 0), e.count - (first.byName.get(k)?.count ?? 0)]);
  for (const [key, size, count] of growth.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${mb(size)}  ${String(count).padStart(8)}  ${key}`);
}

// What importing each module costs in memory: every dependency of package.json and every built component
// (dist/<folder>/index.js, and the `meshward sidecar` command's module) imported alone in a fresh Node process,
// after two full GCs, against a process that imports nothing. Says which imports a sidecar pays for at start.
//
//   npm run build && node bench/startup-memory.mjs [MODULE...]
//
// MODULE: a package name or a path to a file, or several joined by + to import in that order (default: all of the
// above). Columns: RSS, its anonymous part (the
// process's own memory; the rest, RssFile, is mostly the node binary's pages, shared with every other Node process
// on the machine), V8's used heap, external memory, and the modules loaded (ES and CommonJS, by package).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// Runs in the child: records every module resolved (ES and CommonJS), imports the target, collects garbage twice
// and prints one JSON line.
const CHILD = `
import { registerHooks } from 'node:module';
import { readFileSync } from 'node:fs';
const urls = new Set();
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.add(r.url); return r; } });
const target = process.env.STARTUP_MEMORY_TARGET;
// "a+b": import a, then b (a package that needs a polyfill loaded first).
for (const t of target ? target.split('+') : []) await import(t);
globalThis.gc(); globalThis.gc();
await new Promise((r) => setTimeout(r, 200));
globalThis.gc();
const status = readFileSync('/proc/self/status', 'utf8');
const kb = (name) => Number(new RegExp('^' + name + ':\\\\s+(\\\\d+)', 'm').exec(status)[1]) / 1024;
const m = process.memoryUsage();
const packages = {};
let files = 0;
for (const url of urls) {
  if (!url.startsWith('file:')) continue;
  files++;
  const at = url.lastIndexOf('/node_modules/');
  const name = at < 0 ? '(meshward)' : url.slice(at + 14).split('/').slice(0, url.slice(at + 14).startsWith('@') ? 2 : 1).join('/');
  packages[name] = (packages[name] ?? 0) + 1;
}
console.log(JSON.stringify({ rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), heapUsed: m.heapUsed / 1048576, heapTotal: m.heapTotal / 1048576, external: m.external / 1048576, files, packages }));
`;

function measure(target) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD], {
    cwd: ROOT,
    env: { ...process.env, STARTUP_MEMORY_TARGET: target ?? '' },
    encoding: 'utf8',
  });
  const line = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !line?.startsWith('{')) return { error: (r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' / ') };
  return JSON.parse(line);
}

function defaultTargets() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const dist = join(ROOT, 'dist');
  const components = readdirSync(dist, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dist, d.name, 'index.js')))
    .map((d) => `dist/${d.name}/index.js`);
  // @peculiar/x509 needs the reflect-metadata polyfill loaded before it, as src/spiffe does.
  const deps = Object.keys(pkg.dependencies).map((d) => (d === '@peculiar/x509' ? 'reflect-metadata+@peculiar/x509' : d));
  return [...deps, ...components, 'dist/telemetry/tracing.js', 'dist/telemetry/metrics.js', 'dist/cli/sidecar.js'];
}

const asSpecifier = (target) =>
  target
    .split('+')
    .map((t) => (t.startsWith('dist/') || t.startsWith('.') || t.startsWith('/') ? pathToFileURL(resolve(ROOT, t)).href : t))
    .join('+');

if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(1);
}
const targets = process.argv.length > 2 ? process.argv.slice(2) : defaultTargets();
const base = measure(undefined);
if (base.error) {
  console.error(`the empty process failed: ${base.error}`);
  process.exit(1);
}
const f = (x) => x.toFixed(1).padStart(6);
const d = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`.padStart(6);
const lines = [
  `Import cost, each module alone in a fresh process after full GCs: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  `empty process: RSS ${base.rss.toFixed(1)} MB (anonymous ${base.anon.toFixed(1)}, file ${base.file.toFixed(1)}), heap used ${base.heapUsed.toFixed(1)} MB`,
  '',
  `| ${'module'.padEnd(40)} | RSS MB | +RSS   | +anon  | +heap  | +ext   | files | packages loaded (files)`,
  `|${'-'.repeat(42)}|-------:|-------:|-------:|-------:|-------:|------:|------`,
];
const rows = targets.map((t) => ({ t, m: measure(asSpecifier(t)) }));
rows.sort((a, b) => (b.m.anon ?? -1) - (a.m.anon ?? -1));
for (const { t, m } of rows) {
  if (m.error) {
    lines.push(`| ${t.padEnd(40)} | failed: ${m.error}`);
    continue;
  }
  const pk = Object.entries(m.packages)
    .sort((a, b) => b[1] - a[1])
    .map(([n, c]) => `${n} ${c}`)
    .join(', ');
  lines.push(`| ${t.padEnd(40)} | ${f(m.rss)} | ${d(m.rss - base.rss)} | ${d(m.anon - base.anon)} | ${d(m.heapUsed - base.heapUsed)} | ${d(m.external - base.external)} | ${String(m.files).padStart(5)} | ${pk}`);
}
console.log(lines.join('\n'));

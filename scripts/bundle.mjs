// Bundles the compiled CLI (dist/, from tsc) into dist/bundle/, which bin/meshward.js runs.
//
// Why: a sidecar is paid for per pod, and most of its idle memory is what it imports. Loaded file by file, the
// sidecar's ~620 modules (undici, zod, yaml, OpenTelemetry, ...) each keep their full source text, a module record
// and their own scope; bundled and minified, the same code idles about 25 MB lower and starts faster (fewer files
// to resolve, read and compile). bench/README.md has the figures (`bench/startup-memory.mjs`).
//
// Code split: what the CLI imports lazily (the CA client, the trace SDK, other subcommands) stays in chunks that
// load only when used. Packages that find their own files through __dirname (.proto files, worker scripts) are left
// external: bundled, they would look in dist/bundle/.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

await rm(outdir, { recursive: true, force: true });
const { metafile } = await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'dist/cli/main.js',
    // Started as files of their own: the CA's signing threads and the demo's app process.
    'signing-worker': 'dist/ca/signing-worker.js',
    'orders-app': 'dist/demo/orders-app.js',
  },
  outdir,
  bundle: true,
  splitting: true,
  minify: process.env.MESHWARD_BUNDLE_MINIFY !== "0",
  // Stack traces and profiles keep readable function names.
  keepNames: true,
  format: 'esm',
  platform: 'node',
  target: 'node26',
  logLevel: 'warning',
  metafile: true,
  external: ['@grpc/grpc-js', '@grpc/reflection', 'grpc-health-check', 'pino', 'write-file-atomic', '@seriousme/openapi-schema-validator', 'ioredis'],
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __meshwardRequire } from 'node:module'; const require = __meshwardRequire(import.meta.url);" },
});

// Which npm packages each output file holds: what a bundled process has loaded can still be told by package
// (test/helpers/loaded-packages.mjs, which keeps a sidecar to loading only what its config uses).
const PACKAGE = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const packagesByOutput = {};
for (const [output, { inputs }] of Object.entries(metafile.outputs)) {
  const packages = new Set(Object.keys(inputs).map((input) => PACKAGE.exec(input)?.[1]).filter(Boolean));
  packagesByOutput[output.slice('dist/bundle/'.length)] = [...packages].sort();
}
await writeFile(join(outdir, 'packages.json'), `${JSON.stringify(packagesByOutput, null, 1)}\n`);

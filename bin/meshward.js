#!/usr/bin/env node
// The published entry point: the CLI is compiled to dist/ and bundled into dist/bundle/ by `npm run build` (run by
// `npm ci` via `prepare`; scripts/bundle.mjs says why it is bundled).
// The Node.js line is checked before anything else loads, so an old runtime gets one line instead of a stack trace.
import { readFileSync } from 'node:fs';

const required = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node;
const requiredMajor = Number(/\d+/.exec(required)[0]);
const major = Number(process.versions.node.split('.')[0]);
if (major < requiredMajor) {
  process.stderr.write(`meshward: needs Node.js ${requiredMajor} or later (package.json engines: "${required}"); this is Node.js ${process.versions.node}\n`);
  process.exit(1);
}

const { main } = await import('../dist/bundle/main.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`meshward: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

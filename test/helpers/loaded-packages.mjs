// Preloaded with `node --import` (NODE_OPTIONS) into meshward child processes: records every npm package a process
// loads, and writes their names, one a line, to `<MESHWARD_LOADED_PACKAGES_PREFIX><pid>.txt` when it exits. Tests
// use it to hold a component to loading only what its configuration uses. The CLI runs from a bundle
// (scripts/bundle.mjs): a bundle file counts as every package it holds (dist/bundle/packages.json).
import { registerHooks } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';

const loaded = new Set();
const bundleFiles = new Set();
const PACKAGE = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const BUNDLE = /\/dist\/bundle\/([^/]+\.js)$/;
let bundleDir;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    const pkg = PACKAGE.exec(result.url);
    if (pkg) loaded.add(pkg[1]);
    const bundled = BUNDLE.exec(result.url);
    if (bundled) {
      bundleFiles.add(bundled[1]);
      bundleDir ??= new URL('./', result.url);
    }
    return result;
  },
});

process.on('exit', () => {
  if (bundleDir !== undefined) {
    const packagesByFile = JSON.parse(readFileSync(new URL('packages.json', bundleDir), 'utf8'));
    for (const file of bundleFiles) for (const pkg of packagesByFile[file] ?? []) loaded.add(pkg);
  }
  writeFileSync(`${process.env.MESHWARD_LOADED_PACKAGES_PREFIX}${process.pid}.txt`, [...loaded].sort().join('\n'));
});

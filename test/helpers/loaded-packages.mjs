// Preloaded with `node --import` (NODE_OPTIONS) into meshward child processes: records every npm package a process
// loads, and writes their names, one a line, to `<MESHWARD_LOADED_PACKAGES_PREFIX><pid>.txt` when it exits. Tests
// use it to hold a component to loading only what its configuration uses.
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';

const loaded = new Set();
const PACKAGE = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    const match = PACKAGE.exec(result.url);
    if (match) loaded.add(match[1]);
    return result;
  },
});

process.on('exit', () => writeFileSync(`${process.env.MESHWARD_LOADED_PACKAGES_PREFIX}${process.pid}.txt`, [...loaded].sort().join('\n')));

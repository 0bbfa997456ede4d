import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Files that ship beside the code (proto/, bin/, package.json) are found from the package root, never by a fixed
// number of `..`: the same module runs from src/ (tests), dist/<folder>/ (tsc's output) and dist/bundle/ (what the
// CLI runs, scripts/bundle.mjs), each at another depth.

let root: string | undefined;

/** A path inside the meshward package: packagePath('proto', 'x.proto'). */
export function packagePath(...segments: string[]): string {
  root ??= findRoot(dirname(fileURLToPath(import.meta.url)));
  return join(root, ...segments);
}

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto'))) return dir;
    if (dirname(dir) === dir) throw new Error(`meshward's package root (with package.json and proto/) is not above ${from}`);
  }
}

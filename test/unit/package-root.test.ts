// Files that ship beside the code are found from the package root (src/package-root.ts): the CLI runs from a
// bundle in dist/bundle/ (scripts/bundle.mjs), where a path counted in `..` from a module's own folder points
// elsewhere than it does from src/ or dist/<folder>/.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../../src/package-root.js';
import { REPO_ROOT } from '../helpers/cli.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('package root', () => {
  it('is the checkout, from src/', () => {
    expect(packagePath('package.json')).toBe(join(REPO_ROOT, 'package.json'));
  });

  it('is the only way src/ reaches outside a module’s own folder through import.meta.url', () => {
    const offenders = sources(join(REPO_ROOT, 'src')).filter((file) => /new URL\(\s*['"`]\.\.\//.test(readFileSync(file, 'utf8')));
    expect(offenders).toEqual([]);
  });
});

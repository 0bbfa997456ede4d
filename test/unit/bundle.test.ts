// The CLI runs from dist/bundle/ (scripts/bundle.mjs, built by `npm test` before the tests). An ES module has no
// __dirname or __filename: a bundled package that reads them fails when it gets there (write-file-atomic did, on
// its first write), so such packages must stay external.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

const BUNDLE = join(REPO_ROOT, 'dist/bundle');

describe('the bundle', () => {
  it('has no module that reads __dirname or __filename unguarded', () => {
    const readers = readdirSync(BUNDLE)
      .filter((file) => file.endsWith('.js'))
      .filter((file) => {
        // `typeof __filename<"u"?__filename:void 0` (undici) asks first.
        const code = readFileSync(join(BUNDLE, file), 'utf8').replace(/typeof (__dirname|__filename)\s*(?:[!=]==?|<)\s*"u(?:ndefined)?"\s*\?\s*\1/g, '');
        return /(?<!typeof )\b__(dirname|filename)\b/.test(code);
      });
    expect(readers).toEqual([]);
  });
});

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openToOthers } from '../../src/demo/capture-step.js';
import { tempDir } from '../helpers/cli.js';

// The demo's capture step runs its sidecars as UID 1337, which must reach meshward and node: a checkout under a
// home directory only its owner may enter (/root, Debian 12's homes) leaves the step out with the reason instead.

describe('openToOthers', () => {
  let dir: { dir: string; cleanup: () => void };
  afterEach(() => dir.cleanup());

  it('needs every directory up to the file searchable by all, and the file readable (or runnable) by all', async () => {
    dir = tempDir('meshward-access-');
    const file = join(dir.dir, 'pkg', 'bin.js');
    mkdirSync(join(dir.dir, 'pkg'));
    writeFileSync(file, '', { mode: 0o644 });
    chmodSync(dir.dir, 0o700);
    expect(await openToOthers(file, 0o004)).toBe(false);
    chmodSync(dir.dir, 0o711);
    expect(await openToOthers(file, 0o004)).toBe(true);
    expect(await openToOthers(file, 0o001)).toBe(false);
    chmodSync(file, 0o600);
    expect(await openToOthers(file, 0o004)).toBe(false);
  });
});

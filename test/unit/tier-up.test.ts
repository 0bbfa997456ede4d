// optimiseSooner (proxy/tier-up.ts) sets V8's TurboFan call count at run time unless the command line set it. What
// the lower count does to a sidecar's first seconds is measured by bench/hop.mjs (cold mode), not asserted here:
// when V8 tiers a given function up also depends on its bytecode size and inlining, too fickle for a test.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { turbofanFlag } from '../../src/proxy/tier-up.js';

describe('turbofanFlag', () => {
  it('asks for 1,000 calls when the command line says nothing', () => {
    expect(turbofanFlag([])).toBe('--invocation-count-for-turbofan=1000');
    expect(turbofanFlag(['--max-semi-space-size=4', '--invocation-count-for-maglev=100'])).toBe('--invocation-count-for-turbofan=1000');
  });

  it('leaves a count given on the command line alone, in either spelling', () => {
    expect(turbofanFlag(['--invocation-count-for-turbofan=3000'])).toBeUndefined();
    expect(turbofanFlag(['--invocation-count-for-turbofan', '3000'])).toBeUndefined();
  });

  it('is a flag this Node.js accepts at run time (an unknown one would be reported on stderr)', async () => {
    const { stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', "import { optimiseSooner } from './dist/proxy/tier-up.js'; optimiseSooner();"]);
    expect(stderr).toBe('');
    const bad = await promisify(execFile)(process.execPath, ['-e', "require('node:v8').setFlagsFromString('--no-such-flag-at-all=1')"]);
    expect(bad.stderr).toMatch(/no-such-flag-at-all/);
  });
});

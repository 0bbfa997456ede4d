import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { releaseStartUpMemory } from '../../src/proxy/release-memory.js';

const youngGeneration = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

describe('releaseStartUpMemory', () => {
  it('runs a last-resort collection in a process started without --expose-gc: the young generation shrinks back', () => {
    expect(process.execArgv).not.toContain('--expose-gc');
    // Garbage with some survivors, as start-up and the warm-up leave it: V8 grows the young generation for it.
    let kept: object[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      const o = { i, s: `x${i}` };
      if (i % 8 === 0) kept.push(o);
      if (kept.length > 50_000) kept = [];
    }
    kept = [];
    const grown = youngGeneration();
    releaseStartUpMemory();
    expect(youngGeneration()).toBeLessThan(grown / 4);
    // The flag is off again: nothing else in the process sees gc().
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});

// How many signing threads `ca serve` starts when --workers is not given (src/ca/signing-pool.ts): none on one or
// two CPUs, where a pool cost CPU per certificate and bought no rate (bench/README.md), one per CPU above that.
import { describe, expect, it } from 'vitest';
import { defaultSigningWorkers } from '../../src/ca/signing-pool.js';

describe('default signing workers', () => {
  it('signs on the main thread on one or two CPUs', () => {
    expect(defaultSigningWorkers(1)).toBe(0);
    expect(defaultSigningWorkers(2)).toBe(0);
  });

  it('starts one worker per CPU on three or more', () => {
    expect(defaultSigningWorkers(3)).toBe(3);
    expect(defaultSigningWorkers(16)).toBe(16);
  });
});

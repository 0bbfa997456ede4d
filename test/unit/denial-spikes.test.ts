import { describe, expect, it } from 'vitest';
import { DenialSpikeDetector } from '../../src/telemetry/index.js';

const WINDOW = 10_000;

/** `n` denials of `caller` spread over the window that starts at `start`; returns the spikes reported. */
function burst(detector: DenialSpikeDetector, caller: string, start: number, n: number) {
  const spikes = [];
  for (let i = 0; i < n; i++) {
    const spike = detector.recordDenial(caller, start + Math.floor((i * (WINDOW - 1)) / n));
    if (spike) spikes.push(spike);
  }
  return spikes;
}

describe('denial spikes', () => {
  it('reports a burst well above a caller\'s own baseline, once per window, as it crosses the line', () => {
    const detector = new DenialSpikeDetector();
    // A steady caller denied 10 times per window builds a baseline near 10.
    for (let w = 0; w < 10; w++) expect(burst(detector, 'spiffe://td/ns/a/sa/steady', w * WINDOW, 10)).toEqual([]);
    const spikes = burst(detector, 'spiffe://td/ns/a/sa/steady', 10 * WINDOW, 200);
    expect(spikes).toHaveLength(1);
    expect(spikes[0]!.caller).toBe('spiffe://td/ns/a/sa/steady');
    expect(spikes[0]!.baseline).toBeGreaterThan(8);
    expect(spikes[0]!.denials).toBe(Math.floor(5 * spikes[0]!.baseline) + 1);
  });

  it('does not report a caller whose denials stay at its usual rate, however high', () => {
    const detector = new DenialSpikeDetector();
    burst(detector, 'noisy', 0, 300);
    for (let w = 1; w < 20; w++) expect(burst(detector, 'noisy', w * WINDOW, 300)).toEqual([]);
  });

  it('needs a minimum number of denials, so a quiet caller denied a few times is no spike', () => {
    const detector = new DenialSpikeDetector();
    expect(burst(detector, 'quiet', 0, 19)).toEqual([]);
    expect(burst(detector, 'new', WINDOW, 20)).toHaveLength(1);
  });

  it('lets the baseline decay over quiet windows, and keeps callers apart', () => {
    const detector = new DenialSpikeDetector();
    for (let w = 0; w < 10; w++) burst(detector, 'a', w * WINDOW, 50);
    expect(burst(detector, 'b', 10 * WINDOW, 60)).toHaveLength(1);
    // After a long quiet spell, a's old rate no longer shields a burst.
    expect(burst(detector, 'a', 60 * WINDOW, 60)).toHaveLength(1);
  });

  it('keeps memory bounded by forgetting the longest-quiet caller', () => {
    const detector = new DenialSpikeDetector({ maxCallers: 100 });
    for (let i = 0; i < 1000; i++) detector.recordDenial(`caller-${i}`, i);
    expect((detector as unknown as { callers: Map<string, unknown> }).callers.size).toBe(100);
  });
});

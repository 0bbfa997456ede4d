import { describe, expect, it } from 'vitest';
import { renewalDelayMs, retryDelayMs } from '../../src/identity/renewal-schedule.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const plus = (s: number) => new Date(t0.getTime() + s * 1000);

describe('renewal schedule', () => {
  it('renews at half-life, ±10% of the lifetime', () => {
    expect(renewalDelayMs(t0, plus(3600), t0, () => 0.5)).toBe(1800_000);
    expect(renewalDelayMs(t0, plus(3600), t0, () => 0)).toBe(1440_000);
    expect(renewalDelayMs(t0, plus(3600), t0, () => 1)).toBe(2160_000);
  });
  it('renews at once when half-life has passed', () => {
    expect(renewalDelayMs(t0, plus(3600), plus(3000), () => 0.5)).toBe(0);
  });
  it('backs off exponentially, capped, and never waits past half the time left', () => {
    const delays = [0, 1, 2, 3, 10].map((a) => retryDelayMs(a, Infinity, () => 1));
    expect(delays).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect(retryDelayMs(10, 10_000, () => 1)).toBe(5000);
    expect(retryDelayMs(0, Infinity, () => 0)).toBe(250);
  });
});

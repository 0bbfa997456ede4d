// Denial spikes: a caller whose denials jump well above its own recent rate. The detector is pure (the clock is passed in),
// with bounded memory; warnDenialSpike is its one log line.
//
// The baseline is an exponentially weighted moving average of a caller's denials per window (10 s windows,
// weight 0.3 for the newest closed window, so a window's influence halves in about two windows). A window in which
// the caller is denied at least `minDenials` times and more than `factor` times its baseline (at least 1) is a
// spike, reported once, as it crosses the line, so the warning comes while the burst is still going.
import type { Logger } from './logger.js';

export interface DenialSpikeOptions {
  windowMs?: number;
  factor?: number;
  minDenials?: number;
  alpha?: number;
  /** Callers tracked at once; the longest-quiet one is forgotten when a new one arrives past this. */
  maxCallers?: number;
}

export interface DenialSpike {
  caller: string;
  /** Denials in the current window so far. */
  denials: number;
  /** The caller's usual denials per window. */
  baseline: number;
  windowMs: number;
}

interface CallerState {
  windowStart: number;
  count: number;
  baseline: number;
  reported: boolean;
}

export class DenialSpikeDetector {
  private readonly callers = new Map<string, CallerState>();
  private readonly windowMs: number;
  private readonly factor: number;
  private readonly minDenials: number;
  private readonly alpha: number;
  private readonly maxCallers: number;

  constructor(options: DenialSpikeOptions = {}) {
    this.windowMs = options.windowMs ?? 10_000;
    this.factor = options.factor ?? 5;
    this.minDenials = options.minDenials ?? 20;
    this.alpha = options.alpha ?? 0.3;
    this.maxCallers = options.maxCallers ?? 10_000;
  }

  /** Counts one denial of `caller` at `now` (ms); returns the spike when this denial makes one. */
  recordDenial(caller: string, now: number): DenialSpike | undefined {
    let state = this.callers.get(caller);
    if (state === undefined) {
      if (this.callers.size >= this.maxCallers) this.callers.delete(this.callers.keys().next().value!);
      state = { windowStart: now, count: 0, baseline: 0, reported: false };
    } else {
      // Map order is insertion order: moving a caller to the end keeps the longest-quiet one first in line.
      this.callers.delete(caller);
      this.roll(state, now);
    }
    this.callers.set(caller, state);
    state.count += 1;
    if (state.reported || state.count < this.minDenials || state.count <= this.factor * Math.max(state.baseline, 1)) return undefined;
    state.reported = true;
    return { caller, denials: state.count, baseline: state.baseline, windowMs: this.windowMs };
  }

  /** Folds the windows that have closed since the last denial into the baseline. */
  private roll(state: CallerState, now: number): void {
    const closed = Math.floor((now - state.windowStart) / this.windowMs);
    if (closed <= 0) return;
    state.baseline = this.alpha * state.count + (1 - this.alpha) * state.baseline;
    // Windows without a denial pull the baseline down too.
    state.baseline *= (1 - this.alpha) ** (closed - 1);
    state.windowStart += closed * this.windowMs;
    state.count = 0;
    state.reported = false;
  }
}

/** The warning every component logs for a spike, in the same words, so one alert rule fits them all. */
export function warnDenialSpike(logger: Logger, spike: DenialSpike): void {
  logger.warn(
    { caller: spike.caller, denials: spike.denials, baseline: Math.round(spike.baseline * 10) / 10, windowSeconds: spike.windowMs / 1000 },
    'denial spike: this caller is denied far more often than usual',
  );
}

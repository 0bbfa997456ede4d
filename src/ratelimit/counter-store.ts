// Where fixed-window counters live: Redis, so that every replica counts into one total, or this process's memory.
// The rate-limit service, the sidecar's rateLimit filter and quotas all count through this one interface.

export interface WindowCount {
  /** The counter's value after this hit, in the current window. */
  count: number;
  /** Whole seconds until the window ends and the count starts again from zero. */
  resetSeconds: number;
}

export interface CounterStore {
  /**
   * Adds `hits` to `key`'s counter in the current fixed window of `windowSeconds` (window start: time-unit.ts) and
   * returns the count after adding. Rejects with a StoreError when the store cannot answer in time.
   */
  hit(key: string, windowSeconds: number, hits: number): Promise<WindowCount>;
  /** Where counts are kept, safe to log: "memory", or the Redis URL (which never holds a password). */
  readonly description: string;
  close(): Promise<void>;
}

/** The store did not answer (down, unreachable, too slow): the caller's failure mode decides. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** What to answer when the store fails: let the request through (envoyproxy/ratelimit's behaviour) or refuse it. */
export type FailureMode = 'allow' | 'deny';

/** Seconds since the Unix epoch; injectable so that window arithmetic is tested without waiting. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now() / 1000;

/** The counter's key in the store: the caller's key and the window's start, as envoyproxy/ratelimit builds them. */
export function windowKey(key: string, windowStart: number): string {
  return `${key}${windowStart}`;
}

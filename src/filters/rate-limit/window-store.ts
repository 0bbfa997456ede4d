import { createHash } from 'node:crypto';
import type { CounterStore, FailureMode } from '../../ratelimit/index.js';
import type { RateLimitCharge, RateLimitRefusal, RateLimitStore } from './store.js';

// Rate limits counted in fixed windows of a shared counter store (Redis), so that every replica of a service counts
// into one total: N requests per window, the window being the limit's unit, as envoyproxy/ratelimit counts. Unlike
// the memory store's token buckets, every charge of a request is counted even when another refuses it (INCRBY cannot
// be taken back atomically; envoyproxy/ratelimit counts the same way).
//
// A counter's key is the limit's name, its window and a hash of whose count it is: a key value can be long or hold a
// secret (a header's value, a claim), and it never reaches Redis as written.

export interface FixedWindowLimit {
  readonly requests: number;
  readonly seconds: number;
}

export class WindowRateLimitStore implements RateLimitStore {
  constructor(
    private readonly counters: CounterStore,
    /** By limit name: the limits this store counts. */
    private readonly windows: ReadonlyMap<string, FixedWindowLimit>,
    private readonly failureMode: FailureMode,
  ) {}

  /** Rejects only when the store fails and the failure mode is deny (the filter then answers 503). */
  async take(charges: readonly RateLimitCharge[]): Promise<RateLimitRefusal | undefined> {
    let counts;
    try {
      counts = await Promise.all(
        charges.map(async ({ limit, key }) => {
          const window = this.windows.get(limit.name)!;
          return { limit: limit.name, window, ...(await this.counters.hit(counterKey(limit.name, window.seconds, key), window.seconds, 1)) };
        }),
      );
    } catch (err) {
      // The counter store has warned and counted the error already.
      if (this.failureMode === 'allow') return undefined;
      throw err;
    }
    const over = counts.find((c) => c.count > c.window.requests);
    return over === undefined ? undefined : { limit: over.limit, retryAfterSeconds: over.resetSeconds };
  }

  close(): Promise<void> {
    return this.counters.close();
  }
}

/** `meshward:rl:NAME:SECONDS:HASH_`, then the window's start (counter-store.ts windowKey). */
export function counterKey(limitName: string, windowSeconds: number, key: string): string {
  return `meshward:rl:${limitName}:${windowSeconds}:${createHash('sha256').update(key).digest('base64url')}_`;
}

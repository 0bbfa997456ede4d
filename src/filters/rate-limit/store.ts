// Where rate-limit counters live: behind this one interface, so that a limit counts the same way in memory (one
// process: memory-store.ts) or in a store shared by replicas. A store answers for every charge of one request at
// once: all are taken, or none is.

export interface RateLimitParameters {
  /** Buckets are kept per limit name: a limit whose rate or burst changes keeps counting. */
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface RateLimitCharge {
  readonly limit: RateLimitParameters;
  /** Whose bucket: a principal, an address, a header's value... ('' for one bucket for everyone). */
  readonly key: string;
}

export interface RateLimitRefusal {
  readonly limit: string;
  readonly retryAfterSeconds: number;
}

export interface RateLimitStore {
  /**
   * Takes one token from the bucket of every charge, or, if any bucket is empty, none at all (a refused request is
   * not counted against the other limits) and says which limit refused and when to retry. Synchronous when the
   * counters are in this process; a store that must ask elsewhere returns a promise, and rejects when it cannot
   * answer (the filter then refuses the request: fail closed).
   */
  take(charges: readonly RateLimitCharge[]): RateLimitRefusal | undefined | Promise<RateLimitRefusal | undefined>;
  close?(): void | Promise<void>;
}

import { createHash } from 'node:crypto';
import type { Clock } from '../../authz/index.js';
import type { RateLimitCharge, RateLimitParameters, RateLimitRefusal, RateLimitStore } from './store.js';

// The rate-limit store of one process: token buckets, one per (limit name, key). Keyed by limit name rather than held
// by a compiled policy so that a reloaded policy keeps counting where the old one stopped; a limit whose rate or burst
// changed applies the new values from its next request on.
//
// Memory is bounded. A bucket that has refilled completely is indistinguishable from a new one, so dropping it loses
// nothing: every so many requests a sweep looks at the oldest few buckets of each limit, drops the full ones and moves
// the others to the back, so that over time it visits them all (a clock sweep; reordering on every request instead
// would cost two map writes per decision). If a limit is still at `maxKeysPerLimit` keys when a new key arrives, its
// oldest bucket is dropped even if not full: that key starts again with a full burst, the price of a hard memory cap.
// A key is held as written only when short: a caller chooses a header's value (as long as the header cap lets it), and
// at the cap of keys those bytes would be held once per key; a longer one is held as its SHA-256.

interface Bucket {
  tokens: number;
  updatedAt: number;
}

interface Table {
  readonly buckets: Map<string, Bucket>;
  requestsPerSecond: number;
  burst: number;
}

export interface MemoryRateLimitStoreOptions {
  /** Default 100,000 keys per limit. */
  maxKeysPerLimit?: number;
}

const SWEEP_EVERY = 1024;
/** Keys longer than this are held as their SHA-256. */
const MAX_KEPT_KEY_LENGTH = 64;
const SWEEP_AT_MOST = 64;

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly tables = new Map<string, Table>();
  private readonly maxKeysPerLimit: number;
  private takesSinceSweep = 0;

  constructor(
    private readonly clock: Clock,
    options: MemoryRateLimitStoreOptions = {},
  ) {
    this.maxKeysPerLimit = options.maxKeysPerLimit ?? 100_000;
  }

  /** Synchronous: see RateLimitStore.take. */
  take(charges: readonly RateLimitCharge[]): RateLimitRefusal | undefined {
    const now = this.clock.now();
    if (++this.takesSinceSweep >= SWEEP_EVERY) this.sweep(now);
    const buckets: Bucket[] = [];
    for (const { limit, key } of charges) {
      const bucket = this.refilledBucket(limit, key, now);
      if (bucket.tokens < 1) {
        return { limit: limit.name, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / limit.requestsPerSecond)) };
      }
      buckets.push(bucket);
    }
    for (const bucket of buckets) bucket.tokens -= 1;
    return undefined;
  }

  /** Drops the buckets of limits no longer in the policy. */
  retainOnly(limitNames: Iterable<string>): void {
    const keep = new Set(limitNames);
    for (const name of this.tables.keys()) if (!keep.has(name)) this.tables.delete(name);
  }

  /** How many buckets a limit holds (for tests and metrics). */
  size(limitName: string): number {
    return this.tables.get(limitName)?.buckets.size ?? 0;
  }

  private refilledBucket(limit: RateLimitParameters, given: string, now: number): Bucket {
    let table = this.tables.get(limit.name);
    if (table === undefined) {
      table = { buckets: new Map(), requestsPerSecond: limit.requestsPerSecond, burst: limit.burst };
      this.tables.set(limit.name, table);
    }
    table.requestsPerSecond = limit.requestsPerSecond;
    table.burst = limit.burst;
    const key = heldKey(given);
    const bucket = table.buckets.get(key);
    if (bucket !== undefined) {
      // A clock that steps backwards must not mint tokens.
      const elapsed = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed / 1000) * limit.requestsPerSecond);
      bucket.updatedAt = now;
      return bucket;
    }
    if (table.buckets.size >= this.maxKeysPerLimit) this.evictOne(table, now);
    const fresh = { tokens: limit.burst, updatedAt: now };
    table.buckets.set(key, fresh);
    return fresh;
  }

  private evictOne(table: Table, now: number): void {
    const sweptAny = this.sweepTable(table, now, SWEEP_AT_MOST);
    if (!sweptAny) {
      const oldest = table.buckets.keys().next();
      if (!oldest.done) table.buckets.delete(oldest.value);
    }
  }

  private sweep(now: number): void {
    this.takesSinceSweep = 0;
    for (const table of this.tables.values()) this.sweepTable(table, now, SWEEP_AT_MOST);
  }

  /** Looks at the `atMost` oldest buckets: drops the full ones, moves the rest to the back. Returns whether it dropped any. */
  private sweepTable(table: Table, now: number, atMost: number): boolean {
    const oldest: [string, Bucket][] = [];
    for (const entry of table.buckets) {
      if (oldest.length >= atMost) break;
      oldest.push(entry);
    }
    let dropped = false;
    for (const [key, bucket] of oldest) {
      table.buckets.delete(key);
      const refilled = bucket.tokens + (Math.max(0, now - bucket.updatedAt) / 1000) * table.requestsPerSecond;
      if (refilled >= table.burst) dropped = true;
      else table.buckets.set(key, bucket);
    }
    return dropped;
  }
}

/** The key a bucket is held under: as written when short, else `#` and its SHA-256 (a short key starting with `#` too, so the two never meet). */
export function heldKey(key: string): string {
  return key.length <= MAX_KEPT_KEY_LENGTH && key.charCodeAt(0) !== 0x23 ? key : `#${createHash('sha256').update(key).digest('base64url')}`;
}

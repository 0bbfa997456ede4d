// Global rate limits: envoyproxy/ratelimit's config format and decision, fixed-window counters in Redis or in
// memory, and the `meshward ratelimit` gRPC server. What a component that counts (the sidecar's rateLimit filter,
// a quota per consumer per day or month) needs is here: openCounterStore's CounterStore, its failure mode, the
// store-errors metric, and the window arithmetic.
import type { RateLimitServer, RateLimitServerOptions } from './server.js';

export type { CounterStore, FailureMode, WindowCount } from './counter-store.js';
export { StoreError } from './counter-store.js';
export { DEFAULT_STORE_TIMEOUT_MS, openCounterStore, type StoreSettings } from './open-store.js';
export { parseRedisUrl } from './redis-url.js';
export { TIME_UNITS, unitSeconds, type TimeUnit } from './time-unit.js';
export type { RateLimitServer, RateLimitServerOptions } from './server.js';

/** Starts `meshward ratelimit`; gRPC and Redis are loaded on first use. */
export async function startRateLimitServer(options: RateLimitServerOptions): Promise<RateLimitServer> {
  const server = await import('./server.js');
  return server.startRateLimitServer(options);
}

// Global rate limits: envoyproxy/ratelimit's config format and decision, fixed-window counters in Redis or in
// memory, and the `meshward ratelimit` gRPC server. The sidecar's rateLimit filter and quotas count through
// openCounterStore's CounterStore.
import type { RateLimitServer, RateLimitServerOptions } from './server.js';

export type { Clock, CounterStore, FailureMode, WindowCount } from './counter-store.js';
export { StoreError } from './counter-store.js';
export { MemoryCounterStore } from './memory-counter-store.js';
export { DEFAULT_STORE_TIMEOUT_MS, openCounterStore, type StoreSettings } from './open-store.js';
export { storeErrorCounter } from './metrics.js';
export { fixedWindow, TIME_UNITS, unitSeconds, type TimeUnit } from './time-unit.js';
export { RateLimitConfig, type DescriptorEntry, type RateLimitRule } from './rate-limit-config.js';
export { decideRateLimit, type RateLimitCall, type RateLimitVerdict } from './decide.js';
export type { RateLimitServer, RateLimitServerOptions } from './server.js';

/** Starts `meshward ratelimit`; gRPC and Redis are loaded on first use. */
export async function startRateLimitServer(options: RateLimitServerOptions): Promise<RateLimitServer> {
  const server = await import('./server.js');
  return server.startRateLimitServer(options);
}

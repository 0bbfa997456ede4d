// The rate-limit service's metrics. `meshward_ratelimit_store_errors_total` (storeErrorCounter) is also the sidecar's
// series for the same meaning, so that one alert fits every process that counts in Redis.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReloadStats } from '../config/index.js';
import { CountTable, createPrometheusMeter, storeErrorCounter } from '../telemetry/index.js';
import type { Code } from './decide.js';

export interface RateLimitServerMetrics {
  /** One answered ShouldRateLimit, by its overall code. */
  recordAnswer(code: Code): void;
  /** Descriptors over their limit that shadow_mode let through. */
  recordShadowed(count: number): void;
  recordStoreError(): void;
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createRateLimitServerMetrics(configReloads: () => ReloadStats): RateLimitServerMetrics {
  const { meter, handle, shutdown } = createPrometheusMeter('meshward-ratelimit');
  const answers = new CountTable((_, code) => ({ code }));
  meter
    .createObservableCounter('meshward_ratelimit_answers_total', { description: 'ShouldRateLimit answers by overall code (OK, OVER_LIMIT).' })
    .addCallback((result) => answers.observe(result));
  const shadowed = meter.createCounter('meshward_ratelimit_shadow_mode_total', { description: 'Descriptors over their limit that shadow_mode let through.' });
  shadowed.add(0);
  const reloads = meter.createObservableCounter('meshward_ratelimit_config_reloads_total', { description: 'New rate-limit configs put in force after start.' });
  const failures = meter.createObservableCounter('meshward_ratelimit_config_reload_failures_total', { description: 'New rate-limit configs refused as invalid; the last good one stayed in force.' });
  meter.addBatchObservableCallback(
    (result) => {
      const stats = configReloads();
      result.observe(reloads, stats.reloads);
      result.observe(failures, stats.rejected);
    },
    [reloads, failures],
  );
  return {
    recordAnswer: (code) => answers.increment('', code),
    recordShadowed: (count) => shadowed.add(count),
    recordStoreError: storeErrorCounter(meter),
    handle,
    shutdown,
  };
}

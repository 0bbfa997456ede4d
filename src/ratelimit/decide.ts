// ShouldRateLimit's decision, knowing nothing of gRPC: every descriptor's limit is looked up, counted in the store,
// and judged; the request is OVER_LIMIT when any descriptor is. As envoyproxy/ratelimit: a descriptor without a
// limit is OK, an `unlimited` one is OK with limit_remaining 2^32-1 and never counted, a limit named in another
// matched limit's `replaces` is neither counted nor judged, and `shadow_mode` counts and reports but answers OK.
import { StoreError, systemClock, type Clock, type CounterStore, type FailureMode } from './counter-store.js';
import type { DescriptorEntry, RateLimitConfig, RateLimitRule } from './rate-limit-config.js';
import { fixedWindow, unitSeconds, type TimeUnit } from './time-unit.js';

export type Code = 'OK' | 'OVER_LIMIT';

export interface Limit {
  requestsPerUnit: number;
  unit: TimeUnit;
}

export interface RateLimitCall {
  domain: string;
  descriptors: ReadonlyArray<{
    entries: readonly DescriptorEntry[];
    /** The caller's own limit for this descriptor (Envoy's RateLimitOverride): used instead of the config's. */
    limit?: Limit;
  }>;
  /** How much each descriptor's count grows; 0 (unset) counts 1. */
  hitsAddend: number;
}

export interface DescriptorVerdict {
  code: Code;
  currentLimit?: Limit & { name?: string };
  limitRemaining: number;
  durationUntilResetSeconds?: number;
}

export interface RateLimitVerdict {
  overallCode: Code;
  statuses: DescriptorVerdict[];
  /** x-ratelimit-limit, -remaining and -reset of the descriptor over its limit; only on OVER_LIMIT. */
  headers: Array<{ key: string; value: string }>;
  /** Descriptors over their limit that shadow_mode let through. */
  shadowed: number;
}

/** A request that cannot be judged (no domain, no descriptors): the caller's error. */
export class InvalidRateLimitCall extends Error {}

export interface DecideOptions {
  config: RateLimitConfig;
  store: CounterStore;
  failureMode: FailureMode;
  clock?: Clock;
}

const UINT32_MAX = 4_294_967_295;
const OK_WITHOUT_LIMIT: DescriptorVerdict = { code: 'OK', limitRemaining: 0 };
const UNLIMITED: DescriptorVerdict = { code: 'OK', limitRemaining: UINT32_MAX };

export async function decideRateLimit(call: RateLimitCall, { config, store, failureMode, clock = systemClock }: DecideOptions): Promise<RateLimitVerdict> {
  if (call.domain === '') throw new InvalidRateLimitCall('rate limit domain must not be empty');
  if (call.descriptors.length === 0) throw new InvalidRateLimitCall('rate limit descriptor list must not be empty');
  const hits = Math.max(1, call.hitsAddend);
  const rules = matchedRules(call, config);
  let shadowed = 0;

  const statuses = await Promise.all(
    rules.map(async (rule, i): Promise<DescriptorVerdict> => {
      if (rule === undefined) return OK_WITHOUT_LIMIT;
      if (rule.limit === undefined) return UNLIMITED;
      const { requestsPerUnit, unit } = rule.limit;
      const currentLimit = { requestsPerUnit, unit, ...(rule.name === undefined ? {} : { name: rule.name }) };
      let count: number;
      let resetSeconds: number;
      try {
        ({ count, resetSeconds } = await store.hit(storeKey(call.domain, call.descriptors[i]!.entries), unitSeconds(unit), hits));
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        // Nothing was counted: allow reports the whole limit as remaining, deny reports none.
        const durationUntilResetSeconds = fixedWindow(clock(), unitSeconds(unit)).resetSeconds;
        return failureMode === 'allow'
          ? { code: 'OK', currentLimit, limitRemaining: requestsPerUnit, durationUntilResetSeconds }
          : { code: 'OVER_LIMIT', currentLimit, limitRemaining: 0, durationUntilResetSeconds };
      }
      const over = count > requestsPerUnit;
      if (over && rule.shadowMode) shadowed += 1;
      return {
        code: over && !rule.shadowMode ? 'OVER_LIMIT' : 'OK',
        currentLimit,
        limitRemaining: over ? 0 : requestsPerUnit - count,
        durationUntilResetSeconds: resetSeconds,
      };
    }),
  );

  const over = statuses.findLast((s) => s.code === 'OVER_LIMIT');
  return {
    overallCode: over ? 'OVER_LIMIT' : 'OK',
    statuses,
    headers: over ? rateLimitHeaders(over) : [],
    shadowed,
  };
}

/** Each descriptor's rule, with the ones another matched rule `replaces` taken out. */
function matchedRules(call: RateLimitCall, config: RateLimitConfig): Array<RateLimitRule | undefined> {
  const rules = call.descriptors.map(({ entries, limit }): RateLimitRule | undefined => {
    // As envoyproxy/ratelimit: a caller's override applies only in a configured domain, and never in shadow mode.
    if (limit && config.hasDomain(call.domain)) return { limit, shadowMode: false, replaces: [] };
    return config.lookup(call.domain, entries);
  });
  const replaced = new Set(rules.flatMap((rule) => rule?.replaces ?? []));
  if (replaced.size === 0) return rules;
  return rules.map((rule) => (rule?.name !== undefined && replaced.has(rule.name) ? undefined : rule));
}

/** envoyproxy/ratelimit's key (before the window start): "domain_key1_value1_key2_value2_". */
export function storeKey(domain: string, entries: readonly DescriptorEntry[]): string {
  let key = `${domain}_`;
  for (const { key: k, value } of entries) key += `${k}_${value}_`;
  return key;
}

function rateLimitHeaders(status: DescriptorVerdict): Array<{ key: string; value: string }> {
  return [
    { key: 'x-ratelimit-limit', value: String(status.currentLimit?.requestsPerUnit ?? 0) },
    { key: 'x-ratelimit-remaining', value: String(status.limitRemaining) },
    { key: 'x-ratelimit-reset', value: String(status.durationUntilResetSeconds ?? 0) },
  ];
}

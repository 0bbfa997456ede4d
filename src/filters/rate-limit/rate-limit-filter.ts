import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { rateLimitSettings, systemClock, type PolicyRateLimit } from '../../authz/index.js';
import { parseDuration, strictObject } from '../../config/index.js';
import { DEFAULT_STORE_TIMEOUT_MS, openCounterStore, parseRedisUrl, unitSeconds, type TimeUnit } from '../../ratelimit/index.js';
import { decisionReply } from '../authz/decision-reply.js';
import type { FilterResult, HopContext } from '../chain.js';
import type { FilterEnvironment, FilterFactory } from '../http-filter.js';
import { replies } from '../local-reply.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { RateLimiter } from './rate-limiter.js';
import type { RateLimitRefusal, RateLimitStore } from './store.js';
import { WindowRateLimitStore, type FixedWindowLimit } from './window-store.js';

// `rateLimit`: limits per key (principal, API key name, source IP, a header, a JWT claim, or one for everyone), each
// limit matching requests as policy rules do. Over a limit: 429 with retry-after. Counted in this process's memory
// (token buckets), or in Redis (`store: redis://...`: fixed windows shared by every replica). A quota is a limit
// whose unit is a day or a month. A store that cannot answer refuses the request (503), unless a Redis store's
// failureMode is allow.

const UNITS = ['second', 'minute', 'hour', 'day', 'month'] as const;

const limitSettings = rateLimitSettings
  .extend({
    requestsPerSecond: rateLimitSettings.shape.requestsPerSecond.optional(),
    /** With `unit`: N requests per unit (a fixed window in Redis; in memory, a bucket of N refilled over the unit). */
    requestsPerUnit: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
    unit: z.enum(UNITS, { error: `must be one of ${UNITS.join(', ')}` }).optional(),
  })
  .superRefine((limit, ctx) => {
    if ((limit.requestsPerSecond === undefined) === (limit.requestsPerUnit === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of requestsPerSecond and requestsPerUnit (with unit)' });
    }
    if ((limit.requestsPerUnit === undefined) !== (limit.unit === undefined)) {
      ctx.addIssue({ code: 'custom', path: [limit.unit === undefined ? 'unit' : 'requestsPerUnit'], message: 'requestsPerUnit and unit go together' });
    }
    if (limit.requestsPerUnit !== undefined && limit.burst !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['burst'], message: 'a limit per unit has no burst: requestsPerUnit may all arrive at once' });
    }
  })
  .transform(({ requestsPerUnit, unit, ...limit }) => {
    if (requestsPerUnit === undefined || unit === undefined) return { ...limit, requestsPerSecond: limit.requestsPerSecond! } as PolicyRateLimit & { window?: FixedWindowLimit };
    const seconds = unitSeconds(unit.toUpperCase() as TimeUnit);
    return { ...limit, requestsPerSecond: requestsPerUnit / seconds, burst: requestsPerUnit, window: { requests: requestsPerUnit, seconds } };
  });

const timeout = z.string().transform((value, ctx) => {
  const parsed = parseDuration(value);
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }
  return Math.max(1, Math.round(parsed.seconds * 1000));
});

const settings = strictObject({
  /** Where the counters live: `memory` (this process), or `redis://HOST:PORT` / `rediss://` (shared by replicas). */
  store: z
    .string()
    .superRefine((store, ctx) => {
      if (store === 'memory') return;
      const parsed = parseRedisUrl(store);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `must be memory or a Redis URL: ${parsed.error}` });
    })
    .default('memory'),
  /** The Redis password: env:NAME or file:PATH (never in the URL). */
  password: z.string().regex(/^(env|file):./, 'must be env:NAME or file:PATH').optional(),
  /** When Redis fails or is slower than `timeout`: let the request through (allow) or answer 503 (deny). */
  failureMode: z.enum(['allow', 'deny'], { error: 'must be allow or deny' }).default('allow'),
  timeout: timeout.optional(),
  limits: z.array(limitSettings).min(1, 'give at least one limit'),
  /** Whether a 429 names the limit that refused it. */
  explainDenials: z.boolean().default(true),
}).superRefine((value, ctx) => {
  const firstAt = new Map<string, number>();
  value.limits.forEach((limit, i) => {
    const first = firstAt.get(limit.name);
    if (first === undefined) firstAt.set(limit.name, i);
    else ctx.addIssue({ code: 'custom', path: ['limits', i, 'name'], message: `duplicate limit name "${limit.name}" (first used at limits[${first}])` });
  });
  if (value.store === 'memory') {
    for (const key of ['password', 'timeout'] as const) {
      if (value[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is for a Redis store (store: redis://HOST:PORT)' });
    }
    return;
  }
  value.limits.forEach((limit, i) => {
    if (limit.window === undefined) {
      ctx.addIssue({ code: 'custom', path: ['limits', i], message: 'a Redis store counts in fixed windows: give requestsPerUnit and unit instead of requestsPerSecond' });
    }
  });
});

export type RateLimitSettings = z.output<typeof settings>;

export const rateLimit: FilterFactory<RateLimitSettings> = {
  name: 'rateLimit',
  settings,
  async create(given, env) {
    const store = await openStore(given, env);
    const limiter = new RateLimiter(given.limits, store);
    const conclude = (ctx: HopContext, refusal: RateLimitRefusal | undefined): FilterResult => {
      if (refusal === undefined) return undefined;
      ctx.decision = { outcome: 'rate_limited', rule: refusal.limit };
      return decisionReply({ kind: 'rate_limited', ...refusal }, { requestId: ctx.requestId, explainDenials: given.explainDenials });
    };
    const unavailable = (ctx: HopContext): FilterResult => {
      ctx.decision = { outcome: 'error', rule: 'error' };
      return replies.unavailable(ctx.requestId, 'the rate-limit store');
    };
    return {
      name: 'rateLimit',
      onRequest(ctx) {
        let refusal: ReturnType<RateLimiter['take']>;
        try {
          refusal = limiter.take(ctx.request);
        } catch {
          return unavailable(ctx);
        }
        if (refusal instanceof Promise) return refusal.then((r) => conclude(ctx, r), () => unavailable(ctx));
        return conclude(ctx, refusal);
      },
      close: () => store.close?.(),
    };
  },
};

async function openStore(given: RateLimitSettings, env: FilterEnvironment): Promise<RateLimitStore> {
  if (given.store === 'memory') return new MemoryRateLimitStore(systemClock);
  const password = given.password?.startsWith('file:') && !isAbsolute(given.password.slice(5)) ? `file:${resolve(env.configDir, given.password.slice(5))}` : given.password;
  const counters = await openCounterStore(
    { url: given.store, ...(password === undefined ? {} : { password }), timeoutMs: given.timeout ?? DEFAULT_STORE_TIMEOUT_MS },
    { logger: env.logger, ...(env.metrics ? { onError: () => env.metrics!.recordRateLimitStoreError() } : {}) },
  );
  const windows = new Map(given.limits.map((limit) => [limit.name, limit.window!]));
  return new WindowRateLimitStore(counters, windows, given.failureMode);
}

import { z } from 'zod';
import { rateLimitSettings, systemClock } from '../../authz/index.js';
import { strictObject } from '../../config/index.js';
import { decisionReply } from '../authz/decision-reply.js';
import type { FilterResult, HopContext } from '../chain.js';
import type { FilterFactory } from '../http-filter.js';
import { replies } from '../local-reply.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { RateLimiter } from './rate-limiter.js';
import type { RateLimitRefusal, RateLimitStore } from './store.js';

// `rateLimit`: token buckets per limit and key (principal, API key name, source IP, a header, a JWT claim, or one for
// everyone), each limit matching requests as policy rules do. Over a limit: 429 with retry-after. A store that cannot
// answer refuses the request (503): fail closed.

const settings = strictObject({
  /** Where the counters live: `memory` (this process). */
  store: z.literal('memory', { error: 'must be memory (counters in this process)' }).default('memory'),
  limits: z.array(rateLimitSettings).min(1, 'give at least one limit'),
  /** Whether a 429 names the limit that refused it. */
  explainDenials: z.boolean().default(true),
}).superRefine((value, ctx) => {
  const firstAt = new Map<string, number>();
  value.limits.forEach((limit, i) => {
    const first = firstAt.get(limit.name);
    if (first === undefined) firstAt.set(limit.name, i);
    else ctx.addIssue({ code: 'custom', path: ['limits', i, 'name'], message: `duplicate limit name "${limit.name}" (first used at limits[${first}])` });
  });
});

export type RateLimitSettings = z.output<typeof settings>;

export const rateLimit: FilterFactory<RateLimitSettings> = {
  name: 'rateLimit',
  settings,
  create(given) {
    const store: RateLimitStore = new MemoryRateLimitStore(systemClock);
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

import { API_KEY_PRINCIPAL_PREFIX, applicableLimits, claimAt, compileRateLimit, ownString, type AuthzRequest, type CompiledRateLimit, type PolicyRateLimit } from '../../authz/index.js';
import type { RateLimitRefusal, RateLimitStore } from './store.js';

// Rate limits as the rateLimit filter and a policy file's `rateLimits` count them: each limit matches requests as
// policy rules do, and keys each one it matches to a bucket (`per`); the store counts.

interface KeyedLimit extends CompiledRateLimit {
  readonly keyOf: (request: AuthzRequest) => string;
}

export class RateLimiter {
  private readonly limits: readonly KeyedLimit[];

  constructor(
    limits: readonly PolicyRateLimit[],
    private readonly store: RateLimitStore,
  ) {
    this.limits = limits.map((limit) => ({ ...compileRateLimit(limit), keyOf: keyOf(limit.per) }));
  }

  /** Charges every limit that applies to the request; says which refused, if one did. Throws (or rejects) as the store does. */
  take(request: AuthzRequest): RateLimitRefusal | undefined | Promise<RateLimitRefusal | undefined> {
    const applicable = applicableLimits(this.limits, request);
    if (applicable.length === 0) return undefined;
    return this.store.take(applicable.map((limit) => ({ limit, key: limit.keyOf(request) })));
  }
}

/**
 * Whose bucket a request goes in. A request without the keyed value is counted by its source IP, never let through
 * unlimited; values that come from the caller (a header, a claim) are kept apart from addresses, so that no caller
 * can spend another's bucket by sending its address as the value.
 */
function keyOf(per: string): (request: AuthzRequest) => string {
  const byAddress = (request: AuthzRequest) => `ip=${request.sourceIp ?? ''}`;
  switch (per) {
    case 'global':
      return () => '';
    case 'ip':
      return (request) => request.sourceIp ?? '';
    case 'principal':
      // SPIFFE IDs and apikey: principals never read as an address.
      return (request) => request.principal || request.sourceIp || '';
    case 'apiKey':
      return (request) => (request.principal?.startsWith(API_KEY_PRINCIPAL_PREFIX) ? request.principal : byAddress(request));
  }
  if (per.startsWith('header:')) {
    const name = per.slice('header:'.length);
    return (request) => {
      const value = ownString(request.headers ?? {}, name);
      return value === undefined ? byAddress(request) : `header=${value}`;
    };
  }
  const path = per.slice('claim:'.length).split('.');
  return (request) => {
    const value = claimAt(request.claims, path);
    return typeof value === 'string' || typeof value === 'number' ? `claim=${value}` : byAddress(request);
  };
}

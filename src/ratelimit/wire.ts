// RateLimitRequest → RateLimitCall and RateLimitVerdict → RateLimitResponse. Pure. Field names are protobufjs's
// camelCase names of Envoy's fields; what arrives is input from the network, so every field may be absent.
import type { RateLimitCall, RateLimitVerdict } from './decide.js';
import { unitNumber, unitOfNumber } from './time-unit.js';

export interface RateLimitRequestMessage {
  domain?: string;
  descriptors?: Array<{
    entries?: Array<{ key?: string; value?: string }> | null;
    limit?: { requestsPerUnit?: number; unit?: number } | null;
  }> | null;
  hitsAddend?: number;
}

// envoy.service.ratelimit.v3.RateLimitResponse.Code
const CODE = { OK: 1, OVER_LIMIT: 2 } as const;

export function toRateLimitCall(message: RateLimitRequestMessage): RateLimitCall {
  return {
    domain: message.domain ?? '',
    hitsAddend: message.hitsAddend ?? 0,
    descriptors: (message.descriptors ?? []).map((descriptor) => {
      const entries = (descriptor.entries ?? []).map((e) => ({ key: e.key ?? '', value: e.value ?? '' }));
      // An override in a unit this version does not know is ignored: the configured limit applies.
      const unit = unitOfNumber(descriptor.limit?.unit ?? 0);
      return descriptor.limit && unit ? { entries, limit: { requestsPerUnit: descriptor.limit.requestsPerUnit ?? 0, unit } } : { entries };
    }),
  };
}

export function toRateLimitResponse(verdict: RateLimitVerdict): object {
  return {
    overallCode: CODE[verdict.overallCode],
    statuses: verdict.statuses.map((status) => ({
      code: CODE[status.code],
      ...(status.currentLimit
        ? { currentLimit: { requestsPerUnit: status.currentLimit.requestsPerUnit, unit: unitNumber(status.currentLimit.unit), name: status.currentLimit.name ?? '' } }
        : {}),
      limitRemaining: status.limitRemaining,
      ...(status.durationUntilResetSeconds === undefined ? {} : { durationUntilReset: { seconds: status.durationUntilResetSeconds } }),
    })),
    responseHeadersToAdd: verdict.headers,
  };
}

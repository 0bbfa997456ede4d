// ShouldRateLimit, from bytes to bytes: decode, decide (decide.ts), answer, observe. A request that does not decode
// or names no domain or no descriptor is the caller's error (INVALID_ARGUMENT), as envoyproxy/ratelimit answers it.
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { decodeRequest, GrpcStatusError, type UnaryBytesHandler } from '../grpc/index.js';
import { decideRateLimit, InvalidRateLimitCall, type DecideOptions, type RateLimitVerdict } from './decide.js';
import type { RateLimitTypes } from './protos.js';
import { toRateLimitCall, toRateLimitResponse, type RateLimitRequestMessage } from './wire.js';

export interface ShouldRateLimitOptions {
  /** The options of each decision; the config is read once per call, so a reload never splits one. */
  current: () => DecideOptions;
  logger: Logger;
  observe: (verdict: RateLimitVerdict) => void;
}

export function shouldRateLimitHandler(types: RateLimitTypes, { current, logger, observe }: ShouldRateLimitOptions): UnaryBytesHandler {
  return async (bytes) => {
    const message = decodeRequest((b) => types.RateLimitRequest.decode(b) as RateLimitRequestMessage, bytes, 'RateLimitRequest');
    const call = toRateLimitCall(message);
    let verdict: RateLimitVerdict;
    try {
      verdict = await decideRateLimit(call, current());
    } catch (err) {
      if (err instanceof InvalidRateLimitCall) throw new GrpcStatusError(status.INVALID_ARGUMENT, err.message);
      throw err;
    }
    observe(verdict);
    if (verdict.overallCode === 'OVER_LIMIT' && logger.isLevelEnabled('debug')) {
      logger.debug({ domain: call.domain, descriptors: call.descriptors.length }, 'over limit');
    }
    return types.RateLimitResponse.encode(toRateLimitResponse(verdict)).finish();
  };
}

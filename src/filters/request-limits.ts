import { hasDuplicateHost } from '../proxy/hop-headers.js';
import { replies } from '../proxy/local-reply.js';
import type { Filter } from './chain.js';

/**
 * A declared body over the cap is refused before a byte of it is read (413); streamed bodies are capped by the
 * forwarder. A request with two Host headers is refused (400): the policy would judge one and the app see another.
 */
export function requestLimits(maxBodyBytes: number): Filter {
  return (ctx) => {
    if (ctx.declaredBodyBytes !== undefined && ctx.declaredBodyBytes > maxBodyBytes) return replies.tooLarge(ctx.requestId, maxBodyBytes);
    if (hasDuplicateHost(ctx.rawHeaders)) return replies.badRequest(ctx.requestId, 'the request has more than one Host header');
    return undefined;
  };
}

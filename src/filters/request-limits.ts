import { replies } from '../proxy/local-reply.js';
import type { Filter } from './chain.js';

/** A declared body over the cap is refused before a byte of it is read (413); streamed bodies are capped by the forwarder. */
export function requestLimits(maxBodyBytes: number): Filter {
  return (ctx) => {
    if (ctx.declaredBodyBytes !== undefined && ctx.declaredBodyBytes > maxBodyBytes) return replies.tooLarge(ctx.requestId, maxBodyBytes);
    return undefined;
  };
}

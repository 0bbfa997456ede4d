import type { Limits } from '../config/index.js';
import { replies, type LocalReply } from './local-reply.js';
import type { HopContext } from './chain.js';
import { z } from 'zod';
import type { FilterFactory, HttpFilter } from './http-filter.js';

/**
 * The reply for a request over a limit, or undefined. Headers over maxHeaderBytes are refused (431): Node's HTTP/1.1
 * parser does so itself (counting the raw bytes, which are more than counted here), but its HTTP/2 server holds only
 * each single field to SETTINGS_MAX_HEADER_LIST_SIZE, not their sum. A declared body over the cap is refused before a
 * byte of it is read (413); streamed bodies are capped by the forwarder. (Two Host headers: request-header-checks.ts.)
 */
function overLimit(limits: Pick<Limits, 'maxHeaderBytes' | 'maxBodyBytes'>, request: HopContext): LocalReply | undefined {
  if (headerBytes(request.rawHeaders) > limits.maxHeaderBytes) return replies.headersTooLarge(request.requestId, limits.maxHeaderBytes);
  if (request.declaredBodyBytes !== undefined && request.declaredBodyBytes > limits.maxBodyBytes) return replies.tooLarge(request.requestId, limits.maxBodyBytes);
  return undefined;
}

export function requestLimits(limits: Pick<Limits, 'maxHeaderBytes' | 'maxBodyBytes'>): HttpFilter {
  return { name: 'limits', onRequest: (ctx) => overLimit(limits, ctx) };
}

/** Names and values, HTTP/2 pseudo-headers (the request line's parts) included. */
function headerBytes(rawHeaders: readonly string[]): number {
  let total = 0;
  for (const field of rawHeaders) total += field.length;
  return total;
}

const bytes = z.number().int().min(1);

/** Built from the listener's `limits`; always right after the header checks (a `filters:` list cannot name it). */
export const limits: FilterFactory<Pick<Limits, 'maxHeaderBytes' | 'maxBodyBytes'>> = {
  name: 'limits',
  settings: z.object({ maxHeaderBytes: bytes, maxBodyBytes: bytes }),
  create: (settings) => requestLimits(settings),
};

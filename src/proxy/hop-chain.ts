import type { Readable } from 'node:stream';
import { replyResponse, runRequestSide, runResponseSide, type BodyReader, type Chain, type FilterResult, type HopContext } from '../filters/chain.js';
import type { DownstreamSignal } from './downstream-signal.js';
import { replies, type LocalReply } from '../filters/local-reply.js';
import type { Logger } from '../telemetry/index.js';
import { hasBody, readWholeBody, requestBody, type DownstreamRequest } from './request-body.js';
import type { ResponseFiltering } from './response-filtering.js';
import { sendReply, sendResponse } from './send-reply.js';
import type { DownstreamResponse } from './upstream.js';

// What every HTTP listener does with its chain (filters/chain.ts) around one request: run the request side with a
// body reader when a filter reads the body, answer a local reply through the response side, and hand the forwarder
// the body and the response side. A chain with neither costs nothing here: no closure, no promise, no copy.

const NO_BODY_READER: BodyReader = () => Promise.reject(new Error('no filter of this chain reads the body'));

/**
 * Runs the request side; `then` gets its reply (undefined: forward), `failed` an error a filter threw or rejected
 * with (the caller answers 500, or nothing when the client has gone).
 */
export function runChain(
  chain: Chain,
  ctx: HopContext,
  req: DownstreamRequest,
  maxBodyBytes: number,
  gone: DownstreamSignal,
  then: (reply: FilterResult) => void,
  failed: (err: unknown) => void,
): void {
  const readBody: BodyReader = chain.requestBodyBytes === undefined ? NO_BODY_READER : (maxBytes) => readWholeBody(req, Math.min(maxBytes, maxBodyBytes), gone);
  let result: FilterResult | Promise<FilterResult>;
  try {
    result = runRequestSide(chain, ctx, readBody);
  } catch (err) {
    failed(err);
    return;
  }
  if (result instanceof Promise) result.then(then, failed);
  else then(result);
}

/** The reply for a chain that failed: fail closed, and say nothing of why (the log says it). */
export function chainFailure(err: unknown, ctx: HopContext, logger: Logger): LocalReply {
  logger.error({ requestId: ctx.requestId, err: err instanceof Error ? err.message : String(err) }, 'a filter failed; the request is refused');
  return replies.internal(ctx.requestId);
}

/**
 * Sends a local reply through the response side of the filters that ran; `sent` hears the status sent. A filter that
 * fails on it turns it into a 500 (nothing of the reply it failed on is sent).
 */
export function answerLocally(
  res: DownstreamResponse,
  chain: Chain,
  ctx: HopContext,
  reply: LocalReply,
  closeConnection: boolean,
  logger: Logger,
  sent: (status: number) => void,
): void {
  if (!chain.hasResponseSide) {
    sendReply(res, reply, closeConnection);
    sent(reply.status);
    return;
  }
  const response = replyResponse(reply);
  const send = () => {
    sendResponse(res, response, closeConnection);
    sent(response.status);
  };
  const fail = (err: unknown) => {
    const internal = chainFailure(err, ctx, logger);
    sendReply(res, internal, closeConnection);
    sent(internal.status);
  };
  try {
    const applied = runResponseSide(chain, ctx, response);
    if (applied instanceof Promise) applied.then(send, fail);
    else send();
  } catch (err) {
    fail(err);
  }
}

/**
 * The body to forward: the one the filters read (with `content-length` to send for it), or the request's own stream.
 * A request that had no body and still has none is sent without one.
 */
export function forwardedBody(req: DownstreamRequest, ctx: HopContext, maxBodyBytes: number): { body: Readable | Buffer | null; contentLength?: string } {
  if (ctx.body === undefined) return { body: requestBody(req, maxBodyBytes) };
  if (ctx.body.length === 0 && !hasBody(req)) return { body: null };
  return { body: ctx.body, contentLength: String(ctx.body.length) };
}

/** The response side for the forwarder, or undefined when the chain has none. A HEAD answer has no body to read. */
export function responseFiltering(chain: Chain, ctx: HopContext, method: string): ResponseFiltering | undefined {
  if (!chain.hasResponseSide) return undefined;
  return { body: method === 'HEAD' ? undefined : chain.responseBody, apply: (response) => runResponseSide(chain, ctx, response) };
}

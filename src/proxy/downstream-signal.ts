import type { DownstreamRequest } from './request-body.js';
import { hasBody, isHttp2 } from './request-body.js';
import type { DownstreamResponse } from './upstream.js';

// A request ends early in many ways: an HTTP/2 stream reset by the client (a gRPC cancel is one), its HTTP/2
// connection dropped, an HTTP/1.1 client disconnecting, a drain cutting what is left. Each one closes the response,
// and only the response sees them all, so the upstream request is bound to this one signal rather than to any of
// them. (An Http2ServerResponse counts as finished once its stream is reset, so `writableFinished` cannot tell a reset
// from a completed answer: the signal fires on every close, and an upstream request that has completed ignores it.)
//
// The signal also carries requestTimeout for an HTTP/2 request body: Node's HTTP/1.1 server bounds the whole request
// itself (408), its HTTP/2 server does not bound a stream's body at all, so a client sending a byte now and then
// would hold its stream, and the app's connection, for as long as it liked.

export class DownstreamGone extends Error {
  readonly code = 'DOWNSTREAM_GONE';
  constructor() {
    super('the client went away before the answer was complete');
  }
}

export class RequestTimedOut extends Error {
  readonly code = 'REQUEST_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`the request body did not arrive within ${timeoutMs} ms`);
  }
}

// One reason for every request: it is only tested with instanceof and its message read, and since the signal fires
// on every close (above), a new Error per request was a stack trace captured on every answer.
const GONE = new DownstreamGone();

/** Aborts with DownstreamGone when the response closes, or RequestTimedOut when an HTTP/2 body is late. */
export function downstreamSignal(req: DownstreamRequest, res: DownstreamResponse, requestTimeoutMs: number): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort(GONE));
  if (isHttp2(req) && hasBody(req) && !req.readableEnded) {
    const timer = setTimeout(() => controller.abort(new RequestTimedOut(requestTimeoutMs)), requestTimeoutMs);
    const stop = () => clearTimeout(timer);
    req.once('end', stop);
    res.once('close', stop);
  }
  return controller.signal;
}

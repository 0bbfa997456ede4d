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

type AbortListener = () => void;

/**
 * An abort signal for one hop, in the EventEmitter shape undici takes for `signal` (once / removeListener) and the
 * hop's own readers use. An AbortController and its EventTarget cost the inbound sidecar about 5% of its CPU at
 * 1,000 requests/s (bench/hop.mjs under --cpu-prof): created, listened to by undici and the body reader, and
 * aborted on every close. This holds a plain array of its (one or two) listeners.
 */
export class DownstreamSignal {
  aborted = false;
  reason: Error | undefined;
  private listeners: AbortListener[] | undefined;

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }

  /** Calls `listener` once, when the signal aborts (never if it aborted already: check `aborted` first). */
  once(_event: 'abort', listener: AbortListener): this {
    (this.listeners ??= []).push(listener);
    return this;
  }

  /** undici checks for either on() or addEventListener() before it takes a signal. */
  on(event: 'abort', listener: AbortListener): this {
    return this.once(event, listener);
  }

  removeListener(_event: 'abort', listener: AbortListener): this {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i !== -1) this.listeners!.splice(i, 1);
    return this;
  }
}

/** Aborts with DownstreamGone when the response closes, or RequestTimedOut when an HTTP/2 body is late. */
export function downstreamSignal(req: DownstreamRequest, res: DownstreamResponse, requestTimeoutMs: number): DownstreamSignal {
  const signal = new DownstreamSignal();
  res.once('close', () => signal.abort(GONE));
  if (isHttp2(req) && hasBody(req) && !req.readableEnded) {
    const timer = setTimeout(() => signal.abort(new RequestTimedOut(requestTimeoutMs)), requestTimeoutMs);
    const stop = () => clearTimeout(timer);
    req.once('end', stop);
    res.once('close', stop);
  }
  return signal;
}

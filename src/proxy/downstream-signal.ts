import type { DownstreamResponse } from './upstream.js';

// A request ends early in many ways: an HTTP/2 stream reset by the client (a gRPC cancel is one), its HTTP/2
// connection dropped, an HTTP/1.1 client disconnecting, a drain cutting what is left. Each one closes the response,
// and only the response sees them all, so the upstream request is bound to this one signal rather than to any of
// them. (An Http2ServerResponse counts as finished once its stream is reset, so `writableFinished` cannot tell a reset
// from a completed answer: the signal fires on every close, and an upstream request that has completed ignores it.)

export class DownstreamGone extends Error {
  readonly code = 'DOWNSTREAM_GONE';
  constructor() {
    super('the client went away before the answer was complete');
  }
}

export function downstreamSignal(res: DownstreamResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort(new DownstreamGone()));
  return controller.signal;
}

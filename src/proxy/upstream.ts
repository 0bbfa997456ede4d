import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { ForwardOutcome } from './forward-outcome.js';
import type { ResponseFiltering } from './response-filtering.js';
import type { DownstreamSignal } from './downstream-signal.js';

// What a listener hands to whoever carries a request on: the app (plain HTTP/1.1 or h2c) inbound, another
// sidecar (mTLS) outbound.

export interface UpstreamRequest {
  method: string;
  /** The request target as received: path and query. */
  path: string;
  /** Host / :authority as received. */
  authority: string;
  /** Flat [name, value, ...], already filtered (hop-by-hop and identity headers removed). */
  headers: string[];
  /** The request body (streaming, or whole when the chain's filters read it), or null when there is none. */
  body: Readable | Buffer | null;
  /** Aborted when the client has gone away (downstream-signal.ts): the upstream request is abandoned at once. */
  signal: DownstreamSignal;
  /** The chain's response side, when it has one: the answer goes through it before the client sees it. */
  response?: ResponseFiltering;
}

export type DownstreamResponse = ServerResponse | Http2ServerResponse;

export interface Upstream {
  /**
   * Sends the request and streams the answer into `res`. Never rejects. On a failure before anything was written
   * to `res` it writes nothing (the caller replies); after, it destroys `res` (the client sees a cut-off answer,
   * never a wrong one). When `request.signal` aborts it stops the upstream request and resolves `aborted`.
   */
  forward(request: UpstreamRequest, res: DownstreamResponse): Promise<ForwardOutcome>;
  /** Lets requests in flight finish, then closes connections. */
  close(): Promise<void>;
  /** Closes every connection now, requests in flight or not: the end of a drain. */
  destroy(): Promise<void>;
}

/**
 * `writeHead` on either kind of response. The two overload sets are compatible at run time, but TypeScript cannot
 * call a method through a union of overloaded signatures (@types/node 22 and later).
 */
export function writeResponseHead(res: DownstreamResponse, status: number, headers: OutgoingHttpHeaders): void {
  (res as ServerResponse).writeHead(status, headers);
}

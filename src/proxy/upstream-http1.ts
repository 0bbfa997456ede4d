import type { ConnectionOptions } from 'node:tls';
import { buildConnector, Pool } from 'undici';
import { abandoned, classifyUpstreamError, type ForwardOutcome } from './forward-outcome.js';
import { forwardedResponseHeaders } from './hop-headers.js';
import { preconnect, type Preconnected } from './preconnect.js';
import { filteredResponse } from './response-filtering.js';
import { writeResponseHead, type DownstreamResponse, type Upstream, type UpstreamRequest } from './upstream.js';

// HTTP/1.1 to one origin over an undici pool of keep-alive connections: the app (plain) or a destination sidecar
// (mTLS, `tls` given). undici's stream() writes the answer straight into the client's response, without an
// intermediate Readable: the cheapest way through for a proxy.

export interface Http1UpstreamOptions {
  /** host:port */
  address: string;
  /** TLS to the origin (certificate, key, roots, server identity check); plain when absent. */
  tls?: ConnectionOptions;
  /** Time allowed for the answer's headers; exceeded → timeout (504). */
  headersTimeoutMs: number;
  /** Time allowed between two chunks of the answer's body. */
  bodyTimeoutMs: number;
  keepAliveTimeoutMs?: number;
  /**
   * Open one TLS connection at once, before any request (preconnect.ts); a failure to open it is reported here and
   * changes nothing else. Only with `tls`.
   */
  preconnect?: (err: Error, attempt: number) => void;
}

export class Http1Upstream implements Upstream {
  private readonly pool: Pool;
  private readonly preconnected: Preconnected | undefined;

  constructor(private readonly options: Http1UpstreamOptions) {
    const origin = `${options.tls ? 'https' : 'http'}://${options.address}`;
    let connect: Pool.Options['connect'];
    if (options.tls && options.preconnect) {
      this.preconnected = preconnect(buildConnector(options.tls), new URL(origin), options.preconnect);
      connect = this.preconnected.connect;
    } else connect = options.tls;
    this.pool = new Pool(origin, {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      // An answer's headers may be as large as a request's.
      maxHeaderSize: 64 * 1024,
      ...(connect ? { connect } : {}),
    });
  }

  forward(request: UpstreamRequest, res: DownstreamResponse): Promise<ForwardOutcome> {
    let status = 0;
    if (request.signal.aborted) return Promise.resolve(abandoned(request.signal.reason));
    return this.pool
      .stream(
        {
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: request.body,
          headersTimeout: this.options.headersTimeoutMs,
          bodyTimeout: this.options.bodyTimeoutMs,
          signal: request.signal,
        },
        ({ statusCode, headers }) => {
          status = statusCode;
          if (request.response !== undefined) return filteredResponse(res, statusCode, forwardedResponseHeaders(headers), request.response, (sent) => (status = sent));
          writeResponseHead(res, statusCode, forwardedResponseHeaders(headers));
          return res;
        },
      )
      .then(
        (): ForwardOutcome => ({ ok: true, status }),
        (err: unknown): ForwardOutcome => {
          if (res.headersSent) res.destroy();
          // The response closes after a complete answer as well: only one that was cut short was abandoned.
          if (request.signal.aborted) return res.writableEnded ? { ok: true, status } : abandoned(request.signal.reason);
          return classifyUpstreamError(err);
        },
      );
  }

  close(): Promise<void> {
    this.preconnected?.close();
    return this.pool.close();
  }

  destroy(): Promise<void> {
    this.preconnected?.close();
    return this.pool.destroy();
  }
}

import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { abandoned, classifyUpstreamError, type ForwardOutcome } from './forward-outcome.js';
import { forwardedResponseHeaders } from './hop-headers.js';
import { filteredResponse } from './response-filtering.js';
import { writeResponseHead, type DownstreamResponse, type Upstream, type UpstreamRequest } from './upstream.js';

// HTTP/2 to one origin over one multiplexed session: an h2c app (gRPC) inbound, or a destination sidecar over mTLS
// (ALPN h2) outbound. Trailers are carried through (gRPC's grpc-status lives there), and a trailers-only answer
// (headers that end the stream, as gRPC sends for an immediate error) is split into headers and trailers, which
// every gRPC client reads the same way and which an HTTP/1.1 or HTTP/2 response object can express.

const { HTTP2_HEADER_STATUS, NGHTTP2_CANCEL } = http2.constants;
const END_STREAM = http2.constants.NGHTTP2_FLAG_END_STREAM;
const TRAILER_NAMES = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);

export interface Http2UpstreamOptions {
  address: string;
  tls?: ConnectionOptions;
  /** Time allowed for the answer's headers; exceeded → timeout (504). Streams may then run as long as they like. */
  headersTimeoutMs: number;
}

export class Http2Upstream implements Upstream {
  private session: ClientHttp2Session | undefined;
  private closed = false;

  constructor(private readonly options: Http2UpstreamOptions) {}

  forward(request: UpstreamRequest, res: DownstreamResponse): Promise<ForwardOutcome> {
    return new Promise((resolve) => {
      const { signal } = request;
      if (signal.aborted) {
        resolve(abandoned(signal.reason));
        return;
      }
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request(requestHeaders(request, this.options.tls !== undefined), { endStream: request.body === null });
      } catch (err) {
        resolve(classifyUpstreamError(err));
        return;
      }
      let status = 0;
      let settled = false;
      let filtering: Writable | undefined;
      const settle = (outcome: ForwardOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeListener('abort', cancel);
        resolve(outcome);
      };
      const cancel = () => {
        // The response closes after a complete answer as well: only one that was cut short abandons the stream.
        if (res.writableEnded) {
          settle({ ok: true, status });
          return;
        }
        abandon(stream);
        if (res.headersSent) res.destroy();
        settle(abandoned(signal.reason));
      };
      signal.once('abort', cancel);
      const timer = setTimeout(() => {
        abandon(stream);
        if (res.headersSent) res.destroy();
        settle({ ok: false, kind: 'timeout', detail: `no response headers within ${this.options.headersTimeoutMs} ms` });
      }, this.options.headersTimeoutMs);

      stream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
        clearTimeout(timer);
        status = Number(headers[HTTP2_HEADER_STATUS]);
        const forwarded = forwardedResponseHeaders(headers);
        const trailersOnly = (flags & END_STREAM) !== 0;
        const trailers = trailersOnly ? splitTrailers(forwarded) : undefined;
        if (trailers !== undefined) res.addTrailers(trailers);
        if (request.response !== undefined) {
          // The answer is complete once the filters have sent it (the writer finishes), not when the stream closes.
          filtering = filteredResponse(res, status, forwarded, request.response, (sent) => (status = sent));
          filtering.once('finish', () => settle({ ok: true, status }));
          filtering.once('error', (err) => {
            abandon(stream);
            if (res.headersSent) res.destroy();
            settle(classifyUpstreamError(err));
          });
          if (trailersOnly) filtering.end();
          else stream.pipe(filtering);
          return;
        }
        writeResponseHead(res, status, forwarded);
        if (trailersOnly) res.end();
        else stream.pipe(res);
      });
      stream.on('trailers', (trailers: IncomingHttpHeaders) => res.addTrailers(forwardedResponseHeaders(trailers)));
      stream.on('close', () => {
        if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !res.writableEnded) {
          if (res.headersSent) res.destroy();
          settle({ ok: false, kind: 'failed', detail: `upstream reset the stream (code ${stream.rstCode})` });
          return;
        }
        if (status === 0) settle({ ok: false, kind: 'failed', detail: 'upstream closed the stream without answering' });
        else if (filtering === undefined) settle({ ok: true, status });
      });
      stream.on('error', (err) => {
        if (res.headersSent) res.destroy();
        settle(classifyUpstreamError(err));
      });
      const { body } = request;
      if (Buffer.isBuffer(body)) {
        stream.end(body);
      } else if (body !== null) {
        body.on('error', (err) => {
          abandon(stream);
          settle(classifyUpstreamError(err));
        });
        body.pipe(stream);
      }
    });
  }

  close(): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (session === undefined || session.closed || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }

  destroy(): Promise<void> {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
    return Promise.resolve();
  }

  /** One session, reused; a new one once it has gone away (GOAWAY, error, idle close). */
  private connect(): ClientHttp2Session {
    if (this.closed) throw Object.assign(new Error('the upstream is closed'), { code: 'ECONNREFUSED' });
    const current = this.session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const tls = this.options.tls;
    const session = http2.connect(`${tls ? 'https' : 'http'}://${this.options.address}`, tls ? { ...tls, ALPNProtocols: ['h2'] } : {});
    session.on('error', () => undefined);
    session.on('goaway', () => this.session === session && (this.session = undefined));
    session.on('close', () => this.session === session && (this.session = undefined));
    this.session = session;
    return session;
  }
}

/**
 * Resets a stream the sidecar gives up on. stream.close() would end its request body first (END_STREAM, then
 * RST_STREAM): the next hop would see a shorter body as a complete one before it sees the reset. While the body is
 * still open the stream is destroyed instead, which resets it (INTERNAL_ERROR) without ending the body.
 */
function abandon(stream: http2.ClientHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  if (stream.writableEnded) stream.close(NGHTTP2_CANCEL);
  else stream.destroy(new Error('the request was abandoned'));
}

/**
 * gRPC's Trailers-Only is ":status, content-type, then trailers": every other field of it is trailing metadata
 * (grpc-status, grpc-message and the app's own), and goes where the client reads trailers. Of any other answer that
 * ends with its headers, the grpc-* fields are. Takes them out of `headers`; undefined when there are none.
 */
function splitTrailers(headers: Record<string, string | string[]>): Record<string, string | string[]> | undefined {
  const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
  let trailers: Record<string, string | string[]> | undefined;
  for (const name of Object.keys(headers)) {
    if (grpc ? name !== 'content-type' : TRAILER_NAMES.has(name)) {
      (trailers ??= {})[name] = headers[name]!;
      delete headers[name];
    }
  }
  return trailers;
}

function requestHeaders(request: UpstreamRequest, secure: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ':method': request.method,
    ':path': request.path,
    ':authority': request.authority,
    ':scheme': secure ? 'https' : 'http',
  };
  const raw = request.headers;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    // :authority carries the host in HTTP/2.
    if (name === 'host') continue;
    const existing = headers[name];
    headers[name] = existing === undefined ? raw[i + 1]! : Array.isArray(existing) ? [...existing, raw[i + 1]!] : [String(existing), raw[i + 1]!];
  }
  return headers;
}

import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { AuthzRequest } from '../authz/index.js';
import type { Chain, FilterResult, HopContext } from '../filters/chain.js';
import type { LocalReply } from '../filters/local-reply.js';
import type { Tracer } from '@opentelemetry/api';
import { TRACEPARENT } from '../telemetry/index.js';
import { abandoned, failureReply, isClientFault, type ForwardOutcome } from './forward-outcome.js';
import { downstreamSignal, type DownstreamSignal } from './downstream-signal.js';
import { XFCC_HEADER, xfccValue } from '../filters/identity-headers.js';
import { forwardedRequestHeaders } from './hop-headers.js';
import { hopRecordOf, type HopObserver } from './hop-record.js';
import { HopTrace, hopSpanAttributes } from './hop-trace.js';
import { peerIdentity } from './peer-identity.js';
import { requestIdOf } from '../telemetry/request-id.js';
import { answerLocally, chainFailure, forwardedBody, responseFiltering, runChain } from './hop-chain.js';
import { hasUnreadBody, isHttp2, type DownstreamRequest } from './request-body.js';
import { TlsHttpListener, type TlsHttpListenerOptions } from './tls-http-listener.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// The inbound listener for HTTP apps: mutual TLS (TLS 1.3 unless configured), HTTP/1.1 and HTTP/2 chosen by ALPN
// on one port (tls-http-listener.ts), the filter chain, then the app.

export interface InboundHttpOptions extends TlsHttpListenerOptions {
  trustDomain: string;
  /** This sidecar's SPIFFE ID now (it can change with a renewal only in theory; read per request). */
  ownId: () => string;
  chain: Chain;
  upstream: Upstream;
  /** The app speaks HTTP/2 (h2c): keep `te: trailers`. */
  appIsHttp2: boolean;
  observe: HopObserver;
  /** Records spans when tracing is on (tracing.ts); undefined: the trace id is carried, no span recorded. */
  tracer?: Tracer;
}

export class InboundHttpListener extends TlsHttpListener {
  constructor(private readonly options: InboundHttpOptions) {
    super(options, true, 'inbound');
  }

  /** Its SPIFFE ID, or its address when it has none. */
  protected peerOf(socket: TLSSocket): string {
    const peer = peerIdentity(socket, this.options.trustDomain);
    return peer.ok ? peer.spiffeId : `address ${socket.remoteAddress}`;
  }

  protected handle(req: DownstreamRequest, res: DownstreamResponse): void {
    // A stream the HTTP/2 guard refused (or that is gone already) is no request.
    if (isHttp2(req) && req.stream.closed) return;
    const started = performance.now();
    const { options } = this;
    const socket = req.socket as TLSSocket;
    // The identity is remembered per connection; an HTTP/2 request's own socket is a proxy made for each stream, so
    // the session's is used, or every stream would parse the peer certificate again.
    const peer = peerIdentity(isHttp2(req) ? (req.stream.session!.socket as TLSSocket) : socket, options.trustDomain);
    const { id: requestId, generated } = requestIdOf(req.headers['x-request-id']);
    const headers = req.headers as Record<string, string>;
    const request: AuthzRequest = {
      method: req.method ?? '',
      // Checked (well formed, one, the same in Host and :authority) by the chain's first filter.
      host: headers[':authority'] ?? headers.host ?? '',
      path: req.url ?? '',
      headers,
      requestId,
    };
    if (peer.ok) request.principal = peer.spiffeId;
    if (socket.remoteAddress) request.sourceIp = socket.remoteAddress;
    request.destinationPort = socket.localPort;
    const declared = headers['content-length'];
    const hopTrace = new HopTrace(headers.traceparent, options.tracer, 'inbound', request);
    const setHeaders: Array<[string, string]> = [];
    if (generated) setHeaders.push(['x-request-id', requestId]);
    const ctx: HopContext = {
      request,
      requestId,
      traceId: hopTrace.traceId,
      peer,
      rawHeaders: req.rawHeaders,
      declaredBodyBytes: declared === undefined ? undefined : Number(declared),
      setHeaders,
      removeHeaders: [],
      filtersEntered: 0,
    };
    this.connections.begin(socket);
    res.once('close', () => this.connections.end(socket));
    if (this.connections.draining && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
    const hop: Hop = { ctx, trace: hopTrace, started, gone: downstreamSignal(req, res, options.limits.requestTimeout) };
    const endAuthorization = hopTrace.authorization();
    runChain(
      options.chain,
      ctx,
      req,
      options.limits.maxBodyBytes,
      hop.gone,
      (reply) => this.proceed(req, res, hop, reply, endAuthorization),
      (err) => {
        // A client that went away (or whose body ran out of time) while a filter read its body is no filter's fault.
        if (hop.gone.aborted) this.fail(res, hop, abandoned(hop.gone.reason));
        else this.proceed(req, res, hop, chainFailure(err, ctx, options.logger), endAuthorization);
      },
    );
  }

  private proceed(req: DownstreamRequest, res: DownstreamResponse, hop: Hop, reply: FilterResult, endAuthorization: ReturnType<HopTrace['authorization']>): void {
    const { ctx } = hop;
    endAuthorization?.(ctx.decision?.outcome, ctx.decision?.rule);
    if (reply !== undefined) {
      this.answer(res, hop, reply, hasUnreadBody(req));
      return;
    }
    const { options } = this;
    if (hop.gone.aborted) {
      // The client went away (or ran out of time) while the filters ran: the app never hears of the request.
      this.fail(res, hop, abandoned(hop.gone.reason));
      return;
    }
    if (hop.trace.replacesTraceparent) ctx.removeHeaders.push(TRACEPARENT);
    const { body, contentLength } = forwardedBody(req, ctx, options.limits.maxBodyBytes);
    if (contentLength !== undefined) ctx.setHeaders.push(['content-length', contentLength]);
    const remove = ctx.setHeaders.length === 0 ? ctx.removeHeaders : [...ctx.removeHeaders, ...ctx.setHeaders.map(([n]) => n)];
    const headers = forwardedRequestHeaders(req.rawHeaders, { keepTeTrailers: options.appIsHttp2, stripIdentity: true, remove });
    for (const [name, value] of ctx.setHeaders) headers.push(name, value);
    const peer = ctx.peer;
    if (peer?.ok) headers.push(XFCC_HEADER, xfccValue(options.ownId(), peer.certHash, peer.spiffeId));
    if (options.appIsHttp2 || isHttp2(req)) {
      // HTTP/1.1 apps need a Host; an HTTP/2 client sent :authority instead.
      if (req.headers.host === undefined && ctx.request.host !== '') headers.push('host', ctx.request.host);
    }
    const traceparent = hop.trace.startUpstream(`upstream ${ctx.request.method}`, { 'http.request.method': ctx.request.method });
    if (traceparent !== undefined) headers.push(TRACEPARENT, traceparent);
    const { method, path, host } = ctx.request;
    const response = responseFiltering(options.chain, ctx, method);
    options.upstream
      .forward({ method, path, authority: host, headers, body, signal: hop.gone, ...(response ? { response } : {}) }, res)
      .then((outcome) => (outcome.ok ? this.record(hop, outcome.status) : this.fail(res, hop, outcome)));
  }

  /** A reply of the sidecar's own, through the response side of the filters that ran. */
  private answer(res: DownstreamResponse, hop: Hop, reply: LocalReply, closeConnection: boolean, upstreamError?: string): void {
    answerLocally(res, this.options.chain, hop.ctx, reply, closeConnection, this.options.logger, (status) => this.record(hop, status, upstreamError));
  }

  /** Tells the client, when it is still there and nothing was sent yet; else the answer is cut off. */
  private fail(res: DownstreamResponse, hop: Hop, outcome: Extract<ForwardOutcome, { ok: false }>): void {
    const { options } = this;
    const { requestId } = hop.ctx;
    // (An Http2ServerResponse has no `destroyed`: a client that went away is known by the outcome.)
    if (outcome.kind !== 'aborted' && !res.headersSent && !res.destroyed) {
      this.answer(res, hop, failureReply(outcome, requestId, 'the app', options.limits.maxBodyBytes), true, outcome.detail);
    } else {
      this.record(hop, 0, outcome.detail);
    }
    if (!isClientFault(outcome)) options.logger.warn({ requestId, kind: outcome.kind, err: outcome.detail }, 'forwarding to the app failed');
  }

  private record({ ctx, trace, started }: Hop, status: number, upstreamError?: string): void {
    const record = hopRecordOf(ctx, status, performance.now() - started, upstreamError);
    if (trace.recording) trace.end(status, hopSpanAttributes(ctx), upstreamError);
    this.options.observe(record);
  }
}

/** One request on its way through the listener. */
interface Hop {
  ctx: HopContext;
  trace: HopTrace;
  started: number;
  /** Aborted once the client has gone away. */
  gone: DownstreamSignal;
}

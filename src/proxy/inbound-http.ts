import http2, { type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { AuthzRequest } from '../authz/index.js';
import type { Limits } from '../config/index.js';
import type { Chain, FilterResult, HopContext } from '../filters/chain.js';
import type { LocalReply } from '../filters/local-reply.js';
import type { Tracer } from '@opentelemetry/api';
import { TRACEPARENT, type Logger } from '../telemetry/index.js';
import { ConnectionTracker } from './connection-tracker.js';
import { abandoned, failureReply, isClientFault, type ForwardOutcome } from './forward-outcome.js';
import { downstreamSignal } from './downstream-signal.js';
import { XFCC_HEADER, xfccValue } from '../filters/identity-headers.js';
import { forwardedRequestHeaders } from './hop-headers.js';
import { hopRecordOf, type HopObserver } from './hop-record.js';
import { HopTrace } from './hop-trace.js';
import { Http2SessionGuard, perConnectionResetLimit, type GuardEvents } from './http2-session-guard.js';
import { listenOn } from '../telemetry/listen.js';
import { peerIdentity } from './peer-identity.js';
import { requestIdOf } from '../telemetry/request-id.js';
import { answerLocally, chainFailure, forwardedBody, responseFiltering, runChain } from './hop-chain.js';
import { hasBody, isHttp2, type DownstreamRequest } from './request-body.js';
import { connectionCounter } from './serving-health.js';
import { connectionsCheckingInterval } from './timeout-sweep.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// The inbound listener for HTTP apps: mutual TLS (TLS 1.3 unless configured), HTTP/1.1 and HTTP/2 chosen by ALPN
// on one port, the filter chain, then the app. HTTP/2 streams arrive through the compat API, so one handler serves
// both.

export interface InboundHttpOptions {
  host: string;
  port: number;
  tls: SecureContextOptions & { handshakeTimeout: number };
  trustDomain: string;
  /** This sidecar's SPIFFE ID now (it can change with a renewal only in theory; read per request). */
  ownId: () => string;
  limits: Limits;
  chain: Chain;
  upstream: Upstream;
  /** The app speaks HTTP/2 (h2c): keep `te: trailers`. */
  appIsHttp2: boolean;
  /** Where HTTP/2 peers cut off for abuse are reported (http2-session-guard.ts). */
  guardEvents: GuardEvents;
  observe: HopObserver;
  /** Records spans when tracing is on (tracing.ts); undefined: the trace id is carried, no span recorded. */
  tracer?: Tracer;
  logger: Logger;
}

export class InboundHttpListener {
  private readonly server: https.Server;
  private readonly h2: Http2Server;
  private readonly connections = new ConnectionTracker();
  private readonly guard: Http2SessionGuard;
  /** Connections open now, handshakes included (what maxConnections counts). */
  readonly openConnections: () => number;

  constructor(private readonly options: InboundHttpOptions) {
    const { limits } = options;
    // HTTP/1.1 is Node's https server (its header cap, timeouts and keep-alive as configured); a connection that
    // chose h2 by ALPN is handed to an HTTP/2 server instead. (http2's own allowHTTP1 fallback cost half as much
    // again per request in bench/hop.mjs, and did not keep connections alive as configured.)
    this.server = https.createServer(
      {
        ...options.tls,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeout,
        requestTimeout: limits.requestTimeout,
        keepAliveTimeout: limits.idleTimeout,
        connectionsCheckingInterval: connectionsCheckingInterval(limits),
      },
      (req, res) => this.handle(req, res),
    );
    this.server.maxConnections = limits.maxConnections;
    this.openConnections = connectionCounter(this.server);
    this.h2 = http2.createServer({
      maxSessionMemory: 32,
      settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams },
      ...perConnectionResetLimit(limits),
    });
    this.h2.setTimeout(limits.idleTimeout);
    this.h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => this.handle(req, res));
    this.guard = new Http2SessionGuard(limits, options.guardEvents);
    this.h2.on('session', (session) => {
      this.connections.addSession(session);
      this.guard.watch(session, this.peerOf(session.socket as TLSSocket));
    });
    const [serveHttp1] = this.server.listeners('secureConnection') as Array<(socket: TLSSocket) => void>;
    this.server.removeAllListeners('secureConnection');
    this.server.on('secureConnection', (socket: TLSSocket) => {
      if (!this.guard.admits(this.peerOf(socket))) {
        socket.destroy();
        return;
      }
      this.connections.add(socket);
      if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
      else serveHttp1!.call(this.server, socket);
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }) =>
      options.logger.debug({ err: err.message, code: err.code }, 'inbound TLS handshake refused'),
    );
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.options.host, this.options.port);
  }

  /** New handshakes use the new SVID and bundle at once; open connections carry on with theirs. */
  updateTls(context: SecureContextOptions): void {
    this.server.setSecureContext({ ...context });
  }

  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes every connection. */
  async close(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.connections.drain(drainMs);
    await closed;
  }

  /** Who a connection is to the HTTP/2 guard: its SPIFFE ID, or its address when it has none. */
  private peerOf(socket: TLSSocket): string {
    const peer = peerIdentity(socket, this.options.trustDomain);
    return peer.ok ? peer.spiffeId : `address ${socket.remoteAddress}`;
  }

  private handle(req: DownstreamRequest, res: DownstreamResponse): void {
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
    if (trace.recording) trace.end(status, spanAttributesOf(ctx), upstreamError);
    this.options.observe(record);
  }
}

/** One request on its way through the listener. */
interface Hop {
  ctx: HopContext;
  trace: HopTrace;
  started: number;
  /** Aborted once the client has gone away. */
  gone: AbortSignal;
}

function spanAttributesOf(ctx: HopContext): Record<string, string> {
  const attributes: Record<string, string> = { 'meshward.request_id': ctx.requestId };
  if (ctx.request.principal !== undefined) attributes['meshward.principal'] = ctx.request.principal;
  if (ctx.decision !== undefined) {
    attributes['meshward.decision'] = ctx.decision.outcome;
    attributes['meshward.rule'] = ctx.decision.rule;
  }
  return attributes;
}

function hasUnreadBody(req: DownstreamRequest): boolean {
  return !isHttp2(req) && hasBody(req) && !req.readableEnded;
}

import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Limits } from '../config/index.js';
import type { Tracer } from '@opentelemetry/api';
import { TRACEPARENT, type Logger } from '../telemetry/index.js';
import { ConnectionTracker } from './connection-tracker.js';
import { abandoned, failureReply, isClientFault } from './forward-outcome.js';
import type { AuthzRequest } from '../authz/index.js';
import type { Chain, HopContext } from '../filters/chain.js';
import type { HttpFilter } from '../filters/http-filter.js';
import { replies, type LocalReply } from '../filters/local-reply.js';
import { forwardedRequestHeaders } from './hop-headers.js';
import { downstreamSignal } from './downstream-signal.js';
import type { HopObserver } from './hop-record.js';
import { HopTrace } from './hop-trace.js';
import { Http2SessionGuard, perConnectionResetLimit, type GuardEvents } from './http2-session-guard.js';
import { listenOn } from '../telemetry/listen.js';
import { sniffHttp2 } from './protocol-sniff.js';
import { requestIdOf } from '../telemetry/request-id.js';
import { answerLocally, chainFailure, forwardedBody, responseFiltering, runChain } from './hop-chain.js';
import { isHttp2, type DownstreamRequest } from './request-body.js';
import { sendReply } from './send-reply.js';
import { connectionCounter } from './serving-health.js';
import { connectionsCheckingInterval } from './timeout-sweep.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// The app's way out: plain HTTP on loopback (HTTP/1.1, or HTTP/2 with prior knowledge for gRPC), routed by Host /
// :authority to a destination sidecar over mTLS with this sidecar's SVID. A host with no route is refused (502),
// so egress is denied unless configured.

export interface OutboundRoutes {
  /** The upstream for a host (lower case, no port), the port the app called and the protocol it spoke, or undefined. */
  upstreamFor(host: string, port: number, http2: boolean): Upstream | undefined;
}

export interface OutboundListenerOptions {
  host: string;
  port: number;
  limits: Limits;
  /** Run before routing (the route is chosen by the host it checks); synchronous. */
  headerChecks: HttpFilter;
  routes: OutboundRoutes;
  /** The chain of a routed host's requests (its route's overrides applied). */
  chainFor(host: string, port: number): Chain;
  observe: HopObserver;
  /** Where HTTP/2 peers cut off for abuse are reported (http2-session-guard.ts). */
  guardEvents: GuardEvents;
  /** Records spans when tracing is on; see hop-trace.ts. */
  tracer?: Tracer;
  logger: Logger;
}

export class OutboundListener {
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly connections = new ConnectionTracker();
  /** Connections open now (what maxConnections counts). */
  readonly openConnections: () => number;

  constructor(private readonly options: OutboundListenerOptions) {
    const { limits } = options;
    const handler = (req: DownstreamRequest, res: DownstreamResponse) => this.handle(req, res);
    this.h1 = http.createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeout,
        requestTimeout: limits.requestTimeout,
        keepAliveTimeout: limits.idleTimeout,
        connectionsCheckingInterval: connectionsCheckingInterval(limits),
      },
      handler,
    );
    this.h1.maxConnections = limits.maxConnections;
    this.h2 = http2.createServer(
      { settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams }, ...perConnectionResetLimit(limits) },
      handler,
    );
    this.h2.setTimeout(limits.idleTimeout);
    // The app's connections come from loopback: its peer is its address (there is no identity to tell apps apart).
    const guard = new Http2SessionGuard(limits, options.guardEvents);
    this.h2.on('session', (session) => {
      this.connections.addSession(session);
      guard.watch(session, String(session.socket.remoteAddress));
    });
    // The HTTP/1.1 server owns the port (its header and request timeouts run off its own listening); each new
    // connection is looked at first, and HTTP/2 ones are handed to the HTTP/2 server.
    const [serveHttp1] = this.h1.listeners('connection') as Array<(socket: Socket) => void>;
    this.h1.removeAllListeners('connection');
    this.openConnections = connectionCounter(this.h1);
    this.h1.on('connection', (socket: Socket) => {
      if (!guard.admits(String(socket.remoteAddress))) {
        socket.destroy();
        return;
      }
      this.connections.add(socket);
      sniffHttp2(socket, limits.headersTimeout, (prefaceSeen) => {
        if (prefaceSeen) {
          // The HTTP/2 session reads the bytes put back into the socket itself, on its next tick: resuming the
          // socket here would flow them out to no listener first, and the session would see no preface.
          this.connections.markHttp2(socket);
          // The HTTP/1.1 server's sockets stay half-open when the client closes its side (HTTP/1.1 may still answer);
          // an HTTP/2 session would then never learn that its client has gone, nor close the streams left open.
          socket.allowHalfOpen = false;
          this.h2.emit('connection', socket);
          return;
        }
        serveHttp1!.call(this.h1, socket);
        socket.resume();
      });
    });
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.h1, this.options.host, this.options.port);
  }

  async close(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.h1.close(() => resolve()));
    await this.connections.drain(drainMs);
    await closed;
  }

  private handle(req: DownstreamRequest, res: DownstreamResponse): void {
    // A stream the HTTP/2 guard refused (or that is gone already) is no request.
    if (isHttp2(req) && req.stream.closed) return;
    const started = performance.now();
    const { options } = this;
    const socket = req.socket;
    const overHttp2 = isHttp2(req);
    const { id: requestId, generated } = requestIdOf(req.headers['x-request-id']);
    const headers = req.headers as Record<string, string>;
    const request: AuthzRequest = { method: req.method ?? '', host: headers[':authority'] ?? headers.host ?? '', path: req.url ?? '', headers, requestId };
    if (socket.remoteAddress) request.sourceIp = socket.remoteAddress;
    const declared = headers['content-length'];
    const setHeaders: Array<[string, string]> = [];
    if (generated) setHeaders.push(['x-request-id', requestId]);
    const { method, path } = request;
    const trace = new HopTrace(headers.traceparent, options.tracer, 'outbound', { method, host: hostOf(request.host), path, sourceIp: socket.remoteAddress });
    const ctx: HopContext = {
      request,
      requestId,
      traceId: trace.traceId,
      peer: undefined,
      rawHeaders: req.rawHeaders,
      declaredBodyBytes: declared === undefined ? undefined : Number(declared),
      setHeaders,
      removeHeaders: [],
      filtersEntered: 0,
    };
    // The host is checked before it routes: a route is chosen by the host every URL parser downstream reads.
    const refused = options.headerChecks.onRequest!(ctx) as LocalReply | undefined;
    const authority = refused === undefined ? request.host : '';
    const host = hostOf(authority);
    this.connections.begin(socket);
    res.once('close', () => this.connections.end(socket));
    const gone = downstreamSignal(req, res, options.limits.requestTimeout);
    if (this.connections.draining && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
    const done = (status: number, upstreamError?: string) => {
      if (trace.recording) trace.end(status, { 'meshward.request_id': requestId }, upstreamError);
      options.observe({
        direction: 'outbound',
        requestId,
        traceId: trace.traceId,
        method,
        host,
        path,
        ...(ctx.decision !== undefined ? { decision: ctx.decision } : {}),
        status,
        ...(upstreamError !== undefined ? { upstreamError } : {}),
        latencyMs: performance.now() - started,
      });
    };

    if (refused !== undefined) {
      sendReply(res, refused, true);
      done(refused.status);
      return;
    }
    const upstream = options.routes.upstreamFor(host, portOf(authority), overHttp2);
    if (upstream === undefined) {
      const reply = replies.noRoute(requestId, host);
      sendReply(res, reply, true);
      done(reply.status);
      return;
    }
    const chain = options.chainFor(host, portOf(authority));
    const answer = (reply: LocalReply, upstreamError?: string) => answerLocally(res, chain, ctx, reply, true, options.logger, (status) => done(status, upstreamError));
    const forward = () => {
      if (gone.aborted) {
        done(0, abandoned(gone.reason).detail);
        return;
      }
      // A request id meshward replaced (one that could be a credential) and a traceparent it restarted do not travel on.
      if (trace.replacesTraceparent) ctx.removeHeaders.push(TRACEPARENT);
      const { body, contentLength } = forwardedBody(req, ctx, options.limits.maxBodyBytes);
      if (contentLength !== undefined) ctx.setHeaders.push(['content-length', contentLength]);
      const remove = ctx.setHeaders.length === 0 ? ctx.removeHeaders : [...ctx.removeHeaders, ...ctx.setHeaders.map(([n]) => n)];
      const forwarded = forwardedRequestHeaders(req.rawHeaders, { keepTeTrailers: overHttp2, stripIdentity: true, remove });
      for (const [name, value] of ctx.setHeaders) forwarded.push(name, value);
      const traceparent = trace.startUpstream(`upstream ${method}`, { 'http.request.method': method, 'server.address': host });
      if (traceparent !== undefined) forwarded.push(TRACEPARENT, traceparent);
      if (overHttp2 && req.headers.host === undefined) forwarded.push('host', authority);
      const response = responseFiltering(chain, ctx, method);
      upstream.forward({ method, path, authority, headers: forwarded, body, signal: gone, ...(response ? { response } : {}) }, res).then((outcome) => {
        if (outcome.ok) {
          done(outcome.status);
          return;
        }
        if (!isClientFault(outcome)) options.logger.warn({ requestId, host, kind: outcome.kind, err: outcome.detail }, 'forwarding to the destination failed');
        // (An Http2ServerResponse has no `destroyed`: a client that went away is known by the outcome.)
        if (outcome.kind !== 'aborted' && !res.headersSent && !res.destroyed) answer(failureReply(outcome, requestId, `the destination "${host}"`, options.limits.maxBodyBytes), outcome.detail);
        else done(0, outcome.detail);
      });
    };
    runChain(
      chain,
      ctx,
      req,
      options.limits.maxBodyBytes,
      gone,
      (reply) => (reply === undefined ? forward() : answer(reply)),
      (err) => (gone.aborted ? done(0, abandoned(gone.reason).detail) : answer(chainFailure(err, ctx, options.logger))),
    );
  }
}

/** The port of Host / :authority; 80 when it names none (the app speaks plain HTTP to this listener). */
export function portOf(authority: string): number {
  const port = /:(\d{1,5})$/.exec(authority.slice(authority.lastIndexOf(']') + 1))?.[1];
  return port === undefined ? 80 : Number(port);
}

/** Host / :authority without its port and trailing dot, lower case (as the policy compares hosts); IPv6 literals keep their brackets. */
export function hostOf(authority: string): string {
  const lower = authority.toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  const host = colon === -1 ? lower : lower.slice(0, colon);
  return host.length > 1 && host.endsWith('.') ? host.slice(0, -1) : host;
}

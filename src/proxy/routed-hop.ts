import { performance } from 'node:perf_hooks';
import type { Tracer } from '@opentelemetry/api';
import type { AuthzRequest } from '../authz/index.js';
import type { Limits } from '../config/index.js';
import type { Chain, HopContext } from '../filters/chain.js';
import type { LocalReply } from '../filters/local-reply.js';
import { TRACEPARENT, type Logger } from '../telemetry/index.js';
import { requestIdOf } from '../telemetry/request-id.js';
import type { ConnectionTracker } from './connection-tracker.js';
import { downstreamSignal, type DownstreamSignal } from './downstream-signal.js';
import { abandoned, failureReply, isClientFault, type ForwardOutcome } from './forward-outcome.js';
import { answerLocally, chainFailure, forwardedBody, responseFiltering, runChain } from './hop-chain.js';
import { forwardedRequestHeaders } from './hop-headers.js';
import { hopRecordOf, type HopObserver } from './hop-record.js';
import { HopTrace, hopSpanAttributes } from './hop-trace.js';
import { hostOf } from './authority.js';
import { hasUnreadBody, isHttp2, type DownstreamRequest } from './request-body.js';
import { sendReply } from './send-reply.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// One request on a listener that sends it on to a mesh destination over mTLS with this sidecar's SVID: the outbound
// listener (the app's calls, routed by host) and the ingress listener (clients outside the mesh, routed by path and
// method). The listener chooses the route; everything else is here: the request's context, the route's chain, the
// route's upstream, what a failure answers, and the record of it all.

export interface RoutingListener {
  direction: 'outbound' | 'ingress';
  limits: Limits;
  connections: ConnectionTracker;
  observe: HopObserver;
  tracer?: Tracer;
  logger: Logger;
}

export class RoutedHop {
  readonly ctx: HopContext;
  private readonly trace: HopTrace;
  private readonly started = performance.now();
  private readonly gone: DownstreamSignal;

  constructor(
    private readonly listener: RoutingListener,
    private readonly req: DownstreamRequest,
    private readonly res: DownstreamResponse,
  ) {
    const socket = req.socket;
    const { id: requestId, generated } = requestIdOf(req.headers['x-request-id']);
    const headers = req.headers as Record<string, string>;
    const request: AuthzRequest = { method: req.method ?? '', host: headers[':authority'] ?? headers.host ?? '', path: req.url ?? '', headers, requestId };
    if (socket.remoteAddress) request.sourceIp = socket.remoteAddress;
    const declared = headers['content-length'];
    this.trace = new HopTrace(headers.traceparent, listener.tracer, listener.direction, { method: request.method, host: hostOf(request.host), path: request.path, sourceIp: socket.remoteAddress });
    this.ctx = {
      request,
      requestId,
      traceId: this.trace.traceId,
      peer: undefined,
      rawHeaders: req.rawHeaders,
      declaredBodyBytes: declared === undefined ? undefined : Number(declared),
      setHeaders: generated ? [['x-request-id', requestId]] : [],
      removeHeaders: [],
      filtersEntered: 0,
    };
    listener.connections.begin(socket);
    res.once('close', () => listener.connections.end(socket));
    this.gone = downstreamSignal(req, res, listener.limits.requestTimeout);
    if (listener.connections.draining && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
  }

  /** Answers before any route's chain ran (a bad header block, no route); over HTTP/1.1 the connection then closes. */
  reply(reply: LocalReply, closeConnection = true): void {
    sendReply(this.res, reply, closeConnection);
    this.done(reply.status);
  }

  /**
   * Runs the route's chain and sends what it lets through to `upstream`, as `authority` (the Host the destination
   * gets); `destination` names it in the log (and, to the local app outbound, in a failure's answer).
   */
  forward(chain: Chain, upstream: Upstream, authority: string, destination: string): void {
    const { ctx, listener, gone } = this;
    runChain(
      chain,
      ctx,
      this.req,
      listener.limits.maxBodyBytes,
      gone,
      (reply) => (reply === undefined ? this.send(chain, upstream, authority, destination) : this.answer(chain, reply, hasUnreadBody(this.req))),
      (err) => (gone.aborted ? this.done(0, abandoned(gone.reason).detail) : this.answer(chain, chainFailure(err, ctx, listener.logger), true)),
    );
  }

  private send(chain: Chain, upstream: Upstream, authority: string, destination: string): void {
    const { ctx, req, res, gone, listener } = this;
    if (gone.aborted) {
      this.done(0, abandoned(gone.reason).detail);
      return;
    }
    // A request id meshward replaced (one that could be a credential) and a traceparent it restarted do not travel on.
    if (this.trace.replacesTraceparent) ctx.removeHeaders.push(TRACEPARENT);
    const { body, contentLength } = forwardedBody(req, ctx, listener.limits.maxBodyBytes);
    if (contentLength !== undefined) ctx.setHeaders.push(['content-length', contentLength]);
    // The destination is called by the route's name for it (outbound, the name the app called already).
    const renamed = authority !== ctx.request.host;
    if (renamed) ctx.removeHeaders.push('host');
    const remove = ctx.setHeaders.length === 0 ? ctx.removeHeaders : [...ctx.removeHeaders, ...ctx.setHeaders.map(([n]) => n)];
    const overHttp2 = isHttp2(req);
    const forwarded = forwardedRequestHeaders(req.rawHeaders, { keepTeTrailers: overHttp2, stripIdentity: true, remove });
    for (const [name, value] of ctx.setHeaders) forwarded.push(name, value);
    const { method, path } = ctx.request;
    const traceparent = this.trace.startUpstream(`upstream ${method}`, { 'http.request.method': method, 'server.address': hostOf(authority) });
    if (traceparent !== undefined) forwarded.push(TRACEPARENT, traceparent);
    if (renamed || req.headers.host === undefined) forwarded.push('host', authority);
    const response = responseFiltering(chain, ctx, method);
    upstream.forward({ method, path, authority, headers: forwarded, body, signal: gone, ...(response ? { response } : {}) }, res).then((outcome) => {
      if (outcome.ok) {
        this.done(outcome.status);
        return;
      }
      if (!isClientFault(outcome)) listener.logger.warn({ requestId: ctx.requestId, host: destination, kind: outcome.kind, err: outcome.detail }, 'forwarding to the destination failed');
      // (An Http2ServerResponse has no `destroyed`: a client that went away is known by the outcome.)
      if (outcome.kind !== 'aborted' && !res.headersSent && !res.destroyed) this.answer(chain, this.failureReply(outcome, destination), true, outcome.detail);
      else this.done(0, outcome.detail);
    });
  }

  /**
   * The local app (outbound) may learn which destination failed and which identity it proved instead; a client
   * outside the mesh (ingress) learns only the kind of failure, never the mesh's names.
   */
  private failureReply(outcome: Extract<ForwardOutcome, { ok: false }>, destination: string): LocalReply {
    const { requestId } = this.ctx;
    const { maxBodyBytes } = this.listener.limits;
    if (this.listener.direction === 'outbound') return failureReply(outcome, requestId, `the destination "${destination}"`, maxBodyBytes);
    return failureReply(outcome.kind === 'identity' ? { ...outcome, kind: 'failed' } : outcome, requestId, 'the destination', maxBodyBytes);
  }

  /** A reply of the sidecar's own, through the response side of the filters that ran. */
  private answer(chain: Chain, reply: LocalReply, closeConnection: boolean, upstreamError?: string): void {
    answerLocally(this.res, chain, this.ctx, reply, closeConnection, this.listener.logger, (status) => this.done(status, upstreamError));
  }

  private done(status: number, upstreamError?: string): void {
    const { ctx, listener } = this;
    if (this.trace.recording) this.trace.end(status, hopSpanAttributes(ctx), upstreamError);
    listener.observe(hopRecordOf(ctx, status, performance.now() - this.started, upstreamError, listener.direction, hostOf(ctx.request.host)));
  }
}

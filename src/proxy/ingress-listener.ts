import type { TLSSocket } from 'node:tls';
import type { Tracer } from '@opentelemetry/api';
import { normalisePath } from '../authz/index.js';
import { appendRequestHeader, removeRequestHeader, setRequestHeader, type Chain, type HopContext, type HttpFilter } from '../filters/index.js';
import { jsonReply, replies, type LocalReply } from '../filters/local-reply.js';
import type { HopObserver } from './hop-record.js';
import { matchRoute, routeDependsOnCase, type RouteMatch } from './ingress-routes.js';
import { hasUnreadBody, isHttp2, type DownstreamRequest } from './request-body.js';
import { RoutedHop, type RoutingListener } from './routed-hop.js';
import { TlsHttpListener, type TlsHttpListenerOptions } from './tls-http-listener.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// The edge: clients outside the mesh (no SVID) over ordinary server-authenticated TLS, HTTP/1.1 and HTTP/2 by ALPN
// (tls-http-listener.ts). A request is routed by its normalised path and method (ingress-routes.ts), runs its route's
// chain (the header checks and limits, then the listener's filters with the route's changes), and is sent over mTLS
// with this sidecar's SVID to the destination of the outbound route it names: the same upstreams, checked by the same
// SPIFFE ID, as the app's own calls (routed-hop.ts). No client certificate is asked for: at the edge a caller proves
// who it is to the filters (an API key), and the mesh sees this sidecar's identity.

export interface IngressRoute extends RouteMatch {
  /** The outbound route (its host as written there) the request goes to; the Host the destination gets. */
  readonly to: string;
  readonly chain: Chain;
}

export interface IngressListenerOptions extends TlsHttpListenerOptions {
  /** Run before routing, as outbound; synchronous. */
  headerChecks: HttpFilter;
  /** In the config's order: the first that matches takes the request. */
  routes: readonly IngressRoute[];
  /** The upstream of an outbound route, by its host as written. */
  upstreamOf(routeHost: string, http2: boolean): Upstream | undefined;
  observe: HopObserver;
  tracer?: Tracer;
}

export class IngressListener extends TlsHttpListener {
  private readonly routing: RoutingListener;

  constructor(private readonly options: IngressListenerOptions) {
    super(options, false, 'ingress');
    const { limits, observe, logger, tracer } = options;
    this.routing = { direction: 'ingress', limits, connections: this.connections, observe, logger, ...(tracer ? { tracer } : {}) };
  }

  /** Clients outside the mesh are told apart by address alone. */
  protected peerOf(socket: TLSSocket): string {
    return `address ${socket.remoteAddress}`;
  }

  protected handle(req: DownstreamRequest, res: DownstreamResponse): void {
    // A stream the HTTP/2 guard refused (or that is gone already) is no request.
    if (isHttp2(req) && req.stream.closed) return;
    const { options } = this;
    const hop = new RoutedHop(this.routing, req, res);
    const { ctx } = hop;
    const refused = options.headerChecks.onRequest!(ctx) as LocalReply | undefined;
    if (refused !== undefined) {
      hop.reply(refused);
      return;
    }
    const target = normalisePath(ctx.request.path);
    if (!target.ok || hasPathParameters(target.path)) {
      hop.reply(replies.badRequest(ctx.requestId, target.ok ? PATH_PARAMETERS : target.reason));
      return;
    }
    // The filters, the destination and the record see the one spelling of the path the route was chosen by.
    ctx.request.path = target.path + target.query;
    const route = matchRoute(options.routes, target.path, ctx.request.method, ctx.request.headers);
    if (routeDependsOnCase(options.routes, target.path, ctx.request.method, ctx.request.headers, route)) {
      hop.reply(replies.badRequest(ctx.requestId, 'the path takes another route when its letters\' case is ignored, as some apps ignore it'), hasUnreadBody(req));
      return;
    }
    if (route === undefined) {
      hop.reply(jsonReply(404, { error: 'not_found', reason: 'no route for this path and method', requestId: ctx.requestId }), hasUnreadBody(req));
      return;
    }
    // The config names only routes that exist; fail closed all the same.
    const upstream = options.upstreamOf(route.to, isHttp2(req));
    if (upstream === undefined) {
      hop.reply(replies.badGateway(ctx.requestId));
      return;
    }
    tellClient(ctx, req.socket.remoteAddress);
    hop.forward(route.chain, upstream, route.to, route.to);
  }
}

const PATH_PARAMETERS = 'the path contains ";" (path parameters, which servers strip or keep as they please)';

/**
 * Whether a normalised path has path parameters (`;`, or `%3B`, which it keeps encoded). Tomcat, Jetty and Spring drop
 * them before routing (and read `..;` as `..`), other servers keep them: `/admin;x` and `/public/..;/admin` would take a
 * route that is not the one the app serves them from.
 */
function hasPathParameters(path: string): boolean {
  return path.includes(';') || path.includes('%3B');
}

/**
 * Headers by which frameworks let a proxy restate the request, which at the edge could only be the client's own word:
 * another path (X-Original-URL, X-Rewrite-URL, X-Forwarded-Prefix), another method (the method overrides), another
 * client, host or scheme (Forwarded, X-Real-IP, X-Forwarded-Port). The route, the filters and the policy judged the
 * request line; an app that believed one of these would act on a request none of them saw.
 */
const RESTATING = new Set([
  'x-original-url',
  'x-rewrite-url',
  'x-forwarded-prefix',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'forwarded',
  'x-real-ip',
  'x-forwarded-port',
]);

/**
 * What the destination's app learns of the client, as from any edge proxy: its address appended to X-Forwarded-For
 * (entries before it are the client's own word), the scheme and the Host it called; and no header of the client's that
 * restates the request (any spelling: WSGI and CGI servers read `_` as `-`). Set before the chain, so that a filter may
 * change them.
 */
function tellClient(ctx: HopContext, address: string | undefined): void {
  const raw = ctx.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (RESTATING.has(name.replaceAll('_', '-'))) removeRequestHeader(ctx, name);
  }
  if (address !== undefined) appendRequestHeader(ctx, 'x-forwarded-for', address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address);
  setRequestHeader(ctx, 'x-forwarded-proto', 'https');
  setRequestHeader(ctx, 'x-forwarded-host', ctx.request.host);
}

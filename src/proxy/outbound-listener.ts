import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Tracer } from '@opentelemetry/api';
import type { Limits } from '../config/index.js';
import type { Chain } from '../filters/chain.js';
import type { HttpFilter } from '../filters/http-filter.js';
import { replies, type LocalReply } from '../filters/local-reply.js';
import type { Logger } from '../telemetry/index.js';
import { listenOn } from '../telemetry/listen.js';
import { hostOf, portOf } from './authority.js';
import { ConnectionTracker } from './connection-tracker.js';
import type { HopObserver } from './hop-record.js';
import { Http2SessionGuard, perConnectionResetLimit, type GuardEvents } from './http2-session-guard.js';
import { sniffHttp2 } from './protocol-sniff.js';
import { isHttp2, type DownstreamRequest } from './request-body.js';
import { RoutedHop, type RoutingListener } from './routed-hop.js';
import { connectionCounter } from './serving-health.js';
import { connectionsCheckingInterval } from './timeout-sweep.js';
import type { DownstreamResponse, Upstream } from './upstream.js';

// The app's way out: plain HTTP on loopback (HTTP/1.1, or HTTP/2 with prior knowledge for gRPC), routed by Host /
// :authority to a destination sidecar over mTLS with this sidecar's SVID. A host with no route is refused (502),
// so egress is denied unless configured.

export interface OutboundRoutes {
  /** The upstream for a host (lower case, no port), the port the app called and the protocol it spoke, or undefined. */
  upstreamFor(host: string, port: number, http2: boolean): Upstream | undefined;
  /** The upstream of the route whose `host` is written so (an ingress route's `to`), or undefined. */
  upstreamOf(routeHost: string, http2: boolean): Upstream | undefined;
}

export interface OutboundListenerOptions {
  host: string;
  port: number;
  limits: Limits;
  /** Run before routing (the route is chosen by the host it checks); synchronous. */
  headerChecks: HttpFilter;
  routes: Pick<OutboundRoutes, 'upstreamFor'>;
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
  private readonly routing: RoutingListener;
  /** Connections open now (what maxConnections counts). */
  readonly openConnections: () => number;

  constructor(private readonly options: OutboundListenerOptions) {
    const { limits } = options;
    this.routing = { direction: 'outbound', limits, connections: this.connections, observe: options.observe, logger: options.logger, ...(options.tracer ? { tracer: options.tracer } : {}) };
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
    const { options } = this;
    const hop = new RoutedHop(this.routing, req, res);
    // The host is checked before it routes: a route is chosen by the host every URL parser downstream reads.
    const refused = options.headerChecks.onRequest!(hop.ctx) as LocalReply | undefined;
    if (refused !== undefined) {
      hop.reply(refused);
      return;
    }
    const authority = hop.ctx.request.host;
    const host = hostOf(authority);
    const port = portOf(authority);
    const upstream = options.routes.upstreamFor(host, port, isHttp2(req));
    if (upstream === undefined) hop.reply(replies.noRoute(hop.ctx.requestId, host));
    else hop.forward(options.chainFor(host, port), upstream, authority, host);
  }
}

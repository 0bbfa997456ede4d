import http2, { type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { Limits } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { listenOn } from '../telemetry/listen.js';
import { ConnectionTracker } from './connection-tracker.js';
import { Http2SessionGuard, perConnectionResetLimit, type GuardEvents } from './http2-session-guard.js';
import type { DownstreamRequest } from './request-body.js';
import { connectionCounter } from './serving-health.js';
import { connectionsCheckingInterval } from './timeout-sweep.js';
import type { DownstreamResponse } from './upstream.js';

// A TLS port that serves HTTP/1.1 and HTTP/2 chosen by ALPN, under a listener's limits: the inbound listener (mutual
// TLS, the mesh's callers) and the ingress listener (server-authenticated TLS, clients outside the mesh). HTTP/1.1 is
// Node's https server (its header cap, timeouts and keep-alive as configured); a connection that chose h2 by ALPN is
// handed to an HTTP/2 server instead. (http2's own allowHTTP1 fallback cost half as much again per request in
// bench/hop.mjs, and did not keep connections alive as configured.) HTTP/2 streams arrive through the compat API, so
// one handler serves both.

export interface TlsHttpListenerOptions {
  host: string;
  port: number;
  /** The certificate (and, for mutual TLS, the roots clients are verified against); none yet: every handshake fails. */
  tls: SecureContextOptions & { handshakeTimeout: number };
  limits: Limits;
  /** Where HTTP/2 peers cut off for abuse are reported (http2-session-guard.ts). */
  guardEvents: GuardEvents;
  logger: Logger;
}

/** A listener on such a port: it says how it handles a request, and who a connection is to the HTTP/2 guard. */
export abstract class TlsHttpListener {
  private readonly server: https.Server;
  private readonly h2: Http2Server;
  /** Requests in flight per connection: handlers count theirs (begin/end) so that a drain knows what to wait for. */
  protected readonly connections = new ConnectionTracker();
  /** Connections open now, handshakes included (what maxConnections counts). */
  readonly openConnections: () => number;

  /** `name` (`inbound`, `ingress`) is for the log; `clientCertificates`: mutual TLS, verified against `tls.ca`. */
  constructor(
    private readonly endpoint: TlsHttpListenerOptions,
    clientCertificates: boolean,
    name: string,
  ) {
    const { limits } = endpoint;
    const handle = (req: DownstreamRequest, res: DownstreamResponse) => this.handle(req, res);
    this.server = https.createServer(
      {
        ...endpoint.tls,
        requestCert: clientCertificates,
        rejectUnauthorized: clientCertificates,
        ALPNProtocols: ['h2', 'http/1.1'],
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeout,
        requestTimeout: limits.requestTimeout,
        keepAliveTimeout: limits.idleTimeout,
        connectionsCheckingInterval: connectionsCheckingInterval(limits),
      },
      handle,
    );
    this.server.maxConnections = limits.maxConnections;
    this.openConnections = connectionCounter(this.server);
    this.h2 = http2.createServer({
      maxSessionMemory: 32,
      settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams },
      ...perConnectionResetLimit(limits),
    });
    this.h2.setTimeout(limits.idleTimeout);
    this.h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => handle(req, res));
    const guard = new Http2SessionGuard(limits, endpoint.guardEvents);
    this.h2.on('session', (session) => {
      this.connections.addSession(session);
      guard.watch(session, this.peerOf(session.socket as TLSSocket));
    });
    const [serveHttp1] = this.server.listeners('secureConnection') as Array<(socket: TLSSocket) => void>;
    this.server.removeAllListeners('secureConnection');
    this.server.on('secureConnection', (socket: TLSSocket) => {
      if (!guard.admits(this.peerOf(socket))) {
        socket.destroy();
        return;
      }
      this.connections.add(socket);
      if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
      else serveHttp1!.call(this.server, socket);
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }) =>
      endpoint.logger.debug({ err: err.message, code: err.code }, `${name} TLS handshake refused`),
    );
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.endpoint.host, this.endpoint.port);
  }

  /** New handshakes use the new certificate (and roots) at once; open connections carry on with theirs. */
  updateTls(context: SecureContextOptions): void {
    this.server.setSecureContext({ ...context });
  }

  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes every connection. */
  async close(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.connections.drain(drainMs);
    await closed;
  }

  /** Who a connection is to the HTTP/2 guard: its identity, or its address. */
  protected abstract peerOf(socket: TLSSocket): string;

  protected abstract handle(req: DownstreamRequest, res: DownstreamResponse): void;
}

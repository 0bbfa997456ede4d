import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import tls, { type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { AuthzRequest } from '../authz/index.js';
import type { Limits } from '../config/index.js';
import { runRequestSide, type Chain, type FilterResult, type HopContext } from '../filters/chain.js';
import { replies } from '../filters/local-reply.js';
import { traceContextOf, type Logger } from '../telemetry/index.js';
import type { HostPort } from '../config/index.js';
import { hopRecordOf, type HopObserver } from './hop-record.js';
import { listenOn } from '../telemetry/listen.js';
import { peerIdentity } from './peer-identity.js';
import { connectionCounter } from './serving-health.js';

// The inbound listener for `tcp://` apps: after the mTLS handshake, the peer is judged on who it is alone (the
// request the filters see is `CONNECT /` with no host and no headers, so only `from` and `to.ports` can match),
// and an allowed connection is spliced to the app byte for byte. A refused one is closed without a byte of the app.

export interface InboundTcpOptions {
  host: string;
  port: number;
  tls: SecureContextOptions & { handshakeTimeout: number };
  trustDomain: string;
  limits: Limits;
  /** Request side only: a byte stream has no HTTP request body or response for filters to read. */
  chain: Chain;
  app: HostPort;
  observe: HopObserver;
  logger: Logger;
}

export class InboundTcpListener {
  private readonly server: tls.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Connections open now, handshakes included (what maxConnections counts). */
  readonly openConnections: () => number;

  constructor(private readonly options: InboundTcpOptions) {
    // Half-open only once the handshake is done (handle()): a peer whose FIN comes before the server's part of the
    // handshake is finished would otherwise leave a connection that no event and no timeout ever closes.
    this.server = tls.createServer({ ...options.tls, requestCert: true, rejectUnauthorized: true }, (socket) => this.handle(socket));
    this.server.maxConnections = options.limits.maxConnections;
    this.openConnections = connectionCounter(this.server);
    this.server.on('tlsClientError', (err: Error) => options.logger.debug({ err: err.message }, 'inbound TLS handshake refused'));
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.options.host, this.options.port);
  }

  updateTls(context: SecureContextOptions): void {
    this.server.setSecureContext({ ...context });
  }

  /** Stops accepting; open byte streams may run for up to `drainMs`, then are cut. */
  async close(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.sockets.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        timer.unref();
        const check = setInterval(() => this.sockets.size === 0 && (clearInterval(check), clearTimeout(timer), resolve()), 50);
        check.unref();
      });
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private handle(socket: TLSSocket): void {
    const started = performance.now();
    const { options } = this;
    // Half-open on both legs: a peer that has finished writing still gets the rest of the app's answer; each
    // direction's end is passed on by pipe(), and a socket closes once both of its directions are done.
    socket.allowHalfOpen = true;
    this.track(socket);
    socket.setTimeout(options.limits.idleTimeout, () => socket.destroy());
    const peer = peerIdentity(socket, options.trustDomain);
    const requestId = randomUUID();
    const request: AuthzRequest = { method: 'CONNECT', host: '', path: '/', headers: {}, requestId, destinationPort: socket.localPort };
    if (peer.ok) request.principal = peer.spiffeId;
    if (socket.remoteAddress) request.sourceIp = socket.remoteAddress;
    const ctx: HopContext = { request, requestId, traceId: traceContextOf(undefined).traceId, peer, rawHeaders: [], declaredBodyBytes: undefined, setHeaders: [], removeHeaders: [], filtersEntered: 0 };
    const proceed = (reply: FilterResult) => {
      if (reply !== undefined) {
        socket.destroy();
        this.record(ctx, reply.status, started);
        return;
      }
      const app = net.connect({ port: options.app.port, host: options.app.host, allowHalfOpen: true });
      this.track(app);
      app.setTimeout(options.limits.idleTimeout, () => app.destroy());
      let connected = false;
      app.on('error', (err: NodeJS.ErrnoException) => {
        options.logger.warn({ requestId, err: err.message }, 'connecting to the app failed');
        socket.destroy();
        // An allowed connection that never reached the app is still a decision: audited, with what went wrong.
        if (!connected) this.record(ctx, 503, started, `${err.code ? `${err.code}: ` : ''}${err.message}`);
      });
      socket.on('error', () => app.destroy());
      socket.pipe(app).pipe(socket);
      app.once('connect', () => {
        connected = true;
        this.record(ctx, 200, started);
      });
    };
    const failed = (err: unknown) => {
      options.logger.error({ requestId, err: err instanceof Error ? err.message : String(err) }, 'a filter failed; the connection is refused');
      proceed(replies.internal(requestId));
    };
    try {
      const result = runRequestSide(options.chain, ctx, noBody);
      if (result instanceof Promise) result.then(proceed, failed);
      else proceed(result);
    } catch (err) {
      failed(err);
    }
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private record(ctx: HopContext, status: number, started: number, upstreamError?: string): void {
    this.options.observe(hopRecordOf(ctx, status, performance.now() - started, upstreamError));
  }
}

function noBody(): Promise<Buffer | undefined> {
  return Promise.reject(new Error('a tcp:// listener has no request body'));
}

// A gRPC server on Node's own HTTP/2 (plain, or TLS with client certificates). It checks what makes a request
// gRPC (POST, content-type, encoding, deadline) once, then hands the stream to the route for its `:path`.
// Routes are either lean byte handlers (unary-route.ts) or grpc-js style services (grpc-js-service-adapter.ts).
import {
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Session,
  type Http2Server,
  type IncomingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { status } from '@grpc/grpc-js';
import type { Logger } from '../telemetry/index.js';
import { parseGrpcTimeout } from './grpc-framing.js';
import { grpcJsServiceRoutes, type ServiceMethods } from './grpc-js-service-adapter.js';
import { sendHttpError, sendStatus } from './grpc-response.js';

/**
 * Serves one call: its stream, the caller's deadline from grpc-timeout (when it sent one), and the request
 * headers (metadata such as x-request-id and traceparent).
 */
export type Route = (stream: ServerHttp2Stream, timeoutMs: number | undefined, headers: IncomingHttpHeaders) => void;

export type ServerTls = Pick<SecureServerOptions, 'key' | 'cert' | 'ca'>;

export interface GrpcHttp2ServerOptions {
  logger: Logger;
  maxMessageBytes: number;
  /** Key, certificate and the CA that client certificates must chain to: mutual TLS when given. */
  tls?: ServerTls;
  /**
   * With `tls`: refuse the handshake without a valid client certificate (the default). When false, a certificate
   * is asked for but optional, and routes see it through verifiedPeerCertificate() only if it chained to `ca`.
   */
  requireClientCertificate?: boolean;
}

const peerCertificates = new WeakMap<Http2Session, Buffer | null>();

/**
 * The DER of the client certificate on this call's connection, when one was presented and chained to the
 * server's CA; undefined otherwise. Read once per connection: the peer cannot change it mid-session.
 */
export function verifiedPeerCertificate(stream: ServerHttp2Stream): Buffer | undefined {
  const session = stream.session;
  if (!session) return undefined;
  let der = peerCertificates.get(session);
  if (der === undefined) {
    const socket = session.socket as TLSSocket;
    der = socket.encrypted && socket.authorized ? (socket.getPeerCertificate().raw ?? null) : null;
    peerCertificates.set(session, der);
  }
  return der ?? undefined;
}

// Bounded per connection so that one peer cannot hold unbounded state; Envoy opens more connections when a
// server advertises a limit. gRPC metadata from Envoy is small: 16 KiB of headers is generous.
const HTTP2_SETTINGS = { maxConcurrentStreams: 1000, maxHeaderListSize: 16 * 1024 };
const LISTEN_BACKLOG = 4096;

export class GrpcHttp2Server {
  private readonly routes = new Map<string, Route>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly server: Http2Server | Http2SecureServer;
  private readonly logger: Logger;

  constructor(private readonly options: GrpcHttp2ServerOptions) {
    this.logger = options.logger;
    this.server = options.tls
      ? createSecureServer({
          ...options.tls,
          settings: HTTP2_SETTINGS,
          requestCert: true,
          rejectUnauthorized: options.requireClientCertificate ?? true,
          minVersion: 'TLSv1.3',
          ALPNProtocols: ['h2'],
        })
      : createServer({ settings: HTTP2_SETTINGS });
    this.server.on('stream', (stream, headers) => this.dispatch(stream as ServerHttp2Stream, headers));
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    this.server.on('sessionError', (err) => this.logger.debug({ err: err.message }, 'HTTP/2 session error'));
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) =>
      this.logger.info({ err: err.message, peer: socket.remoteAddress }, 'TLS handshake refused'),
    );
  }

  /** New handshakes use the new key, certificate and CA at once; open connections carry on with theirs. */
  updateTls(tls: ServerTls): void {
    if (!this.options.tls) throw new Error('this server was started without TLS');
    (this.server as Http2SecureServer).setSecureContext({ ...tls, minVersion: 'TLSv1.3' });
  }

  route(path: string, route: Route): void {
    this.routes.set(path, route);
  }

  /** The registrar that grpc-health-check's and @grpc/reflection's `addToServer` call. */
  addService(service: ServiceMethods, implementation: object): void {
    for (const [path, route] of grpcJsServiceRoutes(service, implementation, this.options.maxMessageBytes)) {
      this.route(path, route);
    }
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`));
      this.server.once('error', onError);
      // A renewal storm is thousands of connects at once; Node's default backlog (511) overflows and each overflow
      // costs a client a SYN retransmit (1 s and more). The kernel caps it at net.core.somaxconn.
      this.server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: stop accepting, send GOAWAY on every connection and let calls in flight finish; after
   * `graceMs`, close what is left.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.close();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
    const timedOut = await Promise.race([closed.then(() => false), graceOver]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ connections: this.sessions.size, graceMs }, 'calls still open after the grace period; closing them');
      for (const session of this.sessions) session.destroy();
      await closed;
    }
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', (err) => this.logger.debug({ err: err.message }, 'HTTP/2 stream error'));
    const admitted = this.admit(stream, headers);
    if (admitted) admitted.route(stream, admitted.timeoutMs, headers);
    else stream.resume(); // refused: discard whatever body is still coming
  }

  /** The route for a well-formed gRPC request; otherwise answers the refusal and returns undefined. */
  private admit(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): { route: Route; timeoutMs: number | undefined } | undefined {
    if (headers[':method'] !== 'POST') {
      sendHttpError(stream, 405);
      return undefined;
    }
    const contentType = headers['content-type'];
    if (contentType !== 'application/grpc' && !contentType?.startsWith('application/grpc+')) {
      sendHttpError(stream, 415);
      return undefined;
    }
    const path = headers[':path'] ?? '';
    const route = this.routes.get(path);
    if (!route) {
      sendStatus(stream, status.UNIMPLEMENTED, `unknown method ${path.slice(0, 200)}`);
      return undefined;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      sendStatus(stream, status.UNIMPLEMENTED, `grpc-encoding "${String(encoding).slice(0, 40)}" is not supported; send identity`);
      return undefined;
    }
    const timeout = parseGrpcTimeout(headers['grpc-timeout'] as string | undefined);
    if (!timeout.ok) {
      sendStatus(stream, timeout.error.code, timeout.error.message);
      return undefined;
    }
    return { route, timeoutMs: timeout.value };
  }
}

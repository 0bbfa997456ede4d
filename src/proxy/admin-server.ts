import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from './listen.js';

// The admin listener: health for probes, what identity is held, the effective config, Prometheus metrics.
// Loopback by default; it serves no secret (the config holds references like env:NAME, never a token or a key).

export interface AdminState {
  /** Ready once an SVID is loaded and every listener is up; false again while draining. */
  ready(): boolean;
  certs(): unknown;
  config(): unknown;
  /** Answers GET /metrics with the Prometheus text exposition. */
  metrics(req: IncomingMessage, res: ServerResponse): void;
}

export class AdminServer {
  private readonly server: http.Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
    state: AdminState,
  ) {
    this.server = http.createServer({ headersTimeout: 5_000, requestTimeout: 10_000 }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: unknown) => {
        const text = `${JSON.stringify(body, null, 2)}\n`;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method_not_allowed' });
      switch (path) {
        case '/healthz':
          return send(200, { status: 'ok' });
        case '/readyz':
          return state.ready() ? send(200, { status: 'ready' }) : send(503, { status: 'not ready' });
        case '/certs':
          return send(200, state.certs());
        case '/config':
          return send(200, state.config());
        case '/metrics':
          return state.metrics(req, res);
        default:
          return send(404, { error: 'not_found', paths: ['/healthz', '/readyz', '/certs', '/config', '/metrics'] });
      }
    });
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.host, this.port);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

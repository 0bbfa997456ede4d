import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from './listen.js';

// The admin listener of every meshward process (sidecar, CA, authz server): health for probes, Prometheus
// metrics, and whatever views the component adds (the sidecar's /certs and /config). It is the control side of a
// process, kept off the data-plane port; loopback by default, and it serves no secret.

export interface AdminState {
  /** /readyz answers 200 while this is true (e.g. the sidecar: an SVID is loaded and it is not draining). */
  ready(): boolean;
  /** Why it is not ready, for the 503's body (read only when ready() is false). */
  notReadyReason?(): string | undefined;
  /** Answers GET /metrics with the Prometheus text exposition. */
  metrics(req: IncomingMessage, res: ServerResponse): void;
  /** More JSON views by path, e.g. { '/certs': () => … }. */
  views?: Record<string, () => unknown>;
}

export class AdminServer {
  private readonly server: http.Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
    state: AdminState,
  ) {
    const views = state.views ?? {};
    const paths = ['/healthz', '/readyz', '/metrics', ...Object.keys(views)];
    this.server = http.createServer({ headersTimeout: 5_000, requestTimeout: 10_000 }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const send = (status: number, body: unknown) => {
        const text = `${JSON.stringify(body, null, 2)}\n`;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method_not_allowed' });
      if (path === '/healthz') return send(200, { status: 'ok' });
      if (path === '/readyz') {
        if (state.ready()) return send(200, { status: 'ready' });
        const reason = state.notReadyReason?.();
        return send(503, { status: 'not ready', ...(reason !== undefined ? { reason } : {}) });
      }
      if (path === '/metrics') return state.metrics(req, res);
      const view = Object.hasOwn(views, path) ? views[path] : undefined;
      if (view) return send(200, view());
      return send(404, { error: 'not_found', paths });
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

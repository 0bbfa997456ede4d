import http from 'node:http';
import type { AddressInfo } from 'node:net';

// The orders app: plain HTTP on loopback, knowing nothing of TLS or identities. It answers with the order asked for
// and with what its sidecar told it about the caller, so the demo can show what reached the app.

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

export async function startOrdersApp(): Promise<RunningApp> {
  const server = http.createServer((req, res) => {
    const id = /^\/api\/orders\/([^/?]+)$/.exec(req.url ?? '')?.[1];
    const body = JSON.stringify({
      ...(id !== undefined ? { order: id, status: 'shipped' } : { error: 'not_found' }),
      caller: req.headers['x-meshward-principal'] ?? null,
      xfcc: req.headers['x-forwarded-client-cert'] ?? null,
    });
    res.writeHead(id !== undefined ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';

// The orders app: plain HTTP on loopback, knowing nothing of TLS or identities. It answers with the order asked for
// (and the card it was paid with) and with what its sidecar told it about the caller, so the demo can show what
// reached the app.

/** The card number every order is paid with: mesh callers see it; clients outside the mesh get it masked. */
export const ORDER_CARD = '4111111111111111';

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

/** On a free loopback port by default; the capture step runs it in a namespace on 0.0.0.0:80, as a pod's app. */
export async function startOrdersApp(listen: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<RunningApp> {
  const server = http.createServer((req, res) => {
    const id = /^\/api\/orders\/([^/?]+)$/.exec(req.url ?? '')?.[1];
    const body = JSON.stringify({
      ...(id !== undefined ? { order: id, status: 'shipped', card: ORDER_CARD } : { error: 'not_found' }),
      caller: req.headers['x-meshward-principal'] ?? null,
      xfcc: req.headers['x-forwarded-client-cert'] ?? null,
    });
    res.writeHead(id !== undefined ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    url: `http://${listen.host}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

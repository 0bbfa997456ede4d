// A new outbound pool (at start, and at every SVID rotation) opens one mTLS connection to its route before any
// request (proxy/preconnect.ts): the first request uses it, and the connections a burst opens next resume its TLS
// session. Checked against a real TLS server standing in for the destination sidecar, which sees every
// connection, and against a real destination sidecar, whose policy must still know the caller on a resumed session.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { ORDERS_ID, WEB_ID, httpRequest, makeMesh, outputContaining, runPair, runSidecar, startHttpApp, type Mesh, type RunningSidecar, type SvidFiles } from '../helpers/sidecar.js';

interface Seen {
  /** Every TLS connection the destination accepted, in order. */
  sockets: TLSSocket[];
  /** The connection each request came on. */
  requests: TLSSocket[];
}

/** An HTTPS server with orders's SVID that asks for the caller's certificate, as a destination sidecar does. */
function destination(svid: SvidFiles, bundle: string, answerAfterMs = 0): { server: https.Server; seen: Seen } {
  const seen: Seen = { sockets: [], requests: [] };
  const server = https.createServer(
    { cert: readFileSync(svid.cert), key: readFileSync(svid.key), ca: readFileSync(bundle), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (req, res) => {
      seen.requests.push(req.socket as TLSSocket);
      setTimeout(() => res.end('ok'), answerAfterMs);
    },
  );
  server.on('secureConnection', (socket: TLSSocket) => seen.sockets.push(socket));
  return { server, seen };
}

/** Resolves once the destination has accepted `n` TLS connections (an event, not a poll). */
function connectionsSeen(server: https.Server, seen: Seen, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (seen.sockets.length < n) return;
      server.off('secureConnection', check);
      resolve();
    };
    server.on('secureConnection', check);
    check();
  });
}

function listen(server: net.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

describe('outbound connections opened ahead', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let web: SvidFiles;
  let orders: SvidFiles;
  const stops: Array<() => unknown> = [];

  beforeAll(async () => {
    mesh = await makeMesh(dir);
    web = await mesh.issue('web', WEB_ID);
    orders = await mesh.issue('orders', ORDERS_ID);
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  afterAll(() => cleanup());

  const webSidecar = (name: string, destinationPort: number): Promise<RunningSidecar> =>
    runSidecar(dir, name, {
      trustDomain: TD,
      identity: { files: { cert: web.cert, key: web.key, bundle: mesh.bundle } },
      outbound: { listen: '127.0.0.1:0', routes: [{ host: 'orders', address: `127.0.0.1:${destinationPort}`, spiffeId: ORDERS_ID }] },
      admin: { listen: '127.0.0.1:0' },
    });

  /** A destination already listening and web's sidecar routed to it; resolves once the connection ahead is up. */
  async function webBeforeAnyRequest(name: string): Promise<{ server: https.Server; seen: Seen; sidecar: RunningSidecar; ahead: TLSSocket }> {
    const { server, seen } = destination(orders, mesh.bundle);
    const port = await listen(server);
    stops.push(() => server.close());
    const sidecar = await webSidecar(name, port);
    stops.push(() => sidecar.stop());
    await connectionsSeen(server, seen, 1);
    return { server, seen, sidecar, ahead: seen.sockets[0]! };
  }

  it('has one connection up before the first request, and the first request rides on it', async () => {
    const { seen, sidecar, ahead } = await webBeforeAnyRequest('web-ahead');
    // The caller is web's sidecar, with its SVID (the server verified the chain against the bundle).
    expect(ahead.getPeerCertificate().subjectaltname).toContain(`URI:${WEB_ID}`);
    expect(seen.requests).toHaveLength(0);

    const answer = await httpRequest(sidecar.outbound!, '/api/orders/1', { headers: { host: 'orders' } });
    expect(answer.status).toBe(200);
    expect(seen.requests).toEqual([ahead]);
    expect(seen.sockets).toHaveLength(1);
  });

  it('keeps trying a destination that is not up yet, and the burst that follows resumes its TLS session', async () => {
    // A port nobody listens on: the sidecar starts first, as sidecars that start together do.
    const probe = net.createServer();
    const port = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    const sidecar = await webSidecar('web-later', port);
    stops.push(() => sidecar.stop());

    // Slow answers, so that eight requests at once need eight connections.
    const { server, seen } = destination(orders, mesh.bundle, 200);
    await listen(server, port);
    stops.push(() => server.close());
    await connectionsSeen(server, seen, 1);
    expect(seen.sockets).toHaveLength(1);
    expect(seen.sockets[0]!.isSessionReused()).toBe(false);

    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => httpRequest(sidecar.outbound!, `/api/orders/${i}`, { headers: { host: 'orders' } })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(seen.sockets.length).toBeGreaterThanOrEqual(8);
    // Every connection after the first resumed a session: no second certificate check at either end.
    expect(seen.sockets.slice(1).filter((s) => !s.isSessionReused())).toEqual([]);
  });

  it('opens a new connection with the new SVID at a rotation, and closes the one the old pool never used', async () => {
    const { server, seen, ahead: old } = await webBeforeAnyRequest('web-rotation');
    const oldSerial = old.getPeerCertificate().serialNumber;
    const oldClosed = new Promise((resolve) => old.once('close', resolve));

    await mesh.issue('web', WEB_ID);
    await connectionsSeen(server, seen, 2);
    expect(seen.sockets[1]!.getPeerCertificate().serialNumber).not.toBe(oldSerial);
    await oldClosed;
    expect(seen.requests).toHaveLength(0);
  });

  it('a destination sidecar still knows the caller on a resumed session, and resumes none from before its rotation (openssl s_client)', async () => {
    const { server: app, url } = await startHttpApp((req, res) => res.end(`hello ${req.url}`));
    stops.push(() => app.close());
    const pair = await runPair(mesh, { app: url });
    stops.push(() => pair.web.stop(), () => pair.orders.stop());
    const session = join(dir, 'web.session');
    const sClient = (extra: string[], request = 'GET /api/orders/7 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n') =>
      new Promise<string>((resolve) => {
        const child = spawn('openssl', ['s_client', '-connect', pair.orders.inbound!, '-CAfile', mesh.bundle, '-tls1_3', '-ign_eof', ...extra]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', () => resolve(out));
        child.stdin.end(request);
      });

    const first = await sClient(['-cert', web.cert, '-key', web.key, '-sess_out', session]);
    expect(first).toMatch(/^New, TLSv1\.3/m);
    expect(first).toMatch(/HTTP\/1\.1 200 OK[\s\S]*hello \/api\/orders\/7/);
    // No certificate this time: the identity is the session's, and the policy (web may GET) still allows it.
    const resumed = await sClient(['-sess_in', session]);
    expect(resumed).toMatch(/^Reused, TLSv1\.3/m);
    expect(resumed).toMatch(/HTTP\/1\.1 200 OK[\s\S]*hello \/api\/orders\/7/);
    // What the caller may do is still decided per request: web may not DELETE, resumed or not.
    const denied = await sClient(['-sess_in', session], 'DELETE /api/orders/7 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
    expect(denied).toMatch(/HTTP\/1\.1 403 Forbidden/);

    // A new identity at the destination (a renewal, a new trust bundle) comes with new session-ticket keys: a
    // session from before is not resumed, and the next handshake checks the caller's certificate again.
    await mesh.issue('orders', ORDERS_ID);
    await outputContaining(pair.orders, 'identity rotated');
    const afterRotation = await sClient(['-cert', web.cert, '-key', web.key, '-sess_in', session]);
    expect(afterRotation).toMatch(/^New, TLSv1\.3/m);
    expect(afterRotation).toMatch(/HTTP\/1\.1 200 OK/);
  });
});

import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { stopChild, tempDir } from '../helpers/cli.js';
import { connectH2, connected, h2Request, identityOf, type MtlsIdentity } from '../helpers/h2-client.js';
import { httpRequest, makeMesh, ORDERS_ID, outputContaining, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const run = promisify(execFile);

// Issue 14: one inbound listener per app port. orders's app serves HTTP/1.1 on one port, HTTP/2 without TLS (h2c,
// as gRPC servers do) on another and raw TCP on a third; its sidecar has one inbound listener for each, with a
// policy each (the first and the third share one file). Clients are curl, node:http2 and node:tls with web's SVID,
// and web's own sidecar, whose routes tell orders's ports apart by the port in Host.

const PAYMENTS_ID = `spiffe://${TD}/ns/default/sa/payments`;

/** Shared by the HTTP/1.1 and the TCP listener: web may read orders; payments may open TCP connections. */
const ORDERS_POLICY = `
defaultAction: deny
rules:
  - name: web-reads-orders
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { methods: ["GET"], paths: ["/api/orders/**"] }
  - name: payments-connects
    action: allow
    from: { principals: ["${PAYMENTS_ID}"] }
    to: { methods: ["CONNECT"] }
`;

/** The h2c listener's own: web may call the gRPC service, nothing else. */
const GRPC_POLICY = `
defaultAction: deny
rules:
  - name: web-calls-orders-grpc
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { paths: ["/orders.Orders/**"] }
`;

interface Seen {
  app: string;
  path: string;
  principal: string | null;
}

/**
 * Both HTTP apps answer with which app they are, the path and the principal the sidecar vouched for; a path ending
 * in `/slow` waits to be released (and says so on `arrivals`).
 */
function answer(app: string, slow: Array<() => void>, arrivals: EventEmitter) {
  return (req: { url?: string; headers: http.IncomingHttpHeaders }, res: { writeHead(status: number, headers: http.OutgoingHttpHeaders): unknown; end(body: string): unknown }) => {
    const principal = req.headers['x-meshward-principal'];
    const body = JSON.stringify({ app, path: req.url ?? '', principal: typeof principal === 'string' ? principal : null } satisfies Seen);
    const send = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (!req.url?.endsWith('/slow')) return send();
    slow.push(send);
    arrivals.emit('slow');
  };
}

async function listening(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** One line through the TCP listener; what came back ('' when the connection was closed without a byte). */
function echoThrough(address: string, identity: MtlsIdentity, line: string): Promise<string> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve) => {
    let received = '';
    const socket = tls.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), ...identity, servername: 'localhost' }, () => socket.end(line));
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received));
  });
}

/** A TCP-listener connection the policy allows, kept open; resolves once the app's echo shows it is spliced. */
function holdOpen(address: string, identity: MtlsIdentity): Promise<tls.TLSSocket> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), ...identity, servername: 'localhost' }, () => socket.write('hold\n'));
    socket.once('data', () => resolve(socket));
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('the held connection was closed')));
  });
}

/** The serial of the certificate a listener presents. */
function servedSerial(address: string, identity: MtlsIdentity): Promise<string> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), ...identity, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toUpperCase());
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe.sequential('sidecar: several inbound listeners, one per app port, each with its own policy', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let web: MtlsIdentity;
  let payments: MtlsIdentity;
  let orders: RunningSidecar;
  let webSidecar: RunningSidecar;
  let http1App: http.Server;
  let h2cApp: http2.Http2Server;
  let tcpApp: net.Server;
  const slow: Array<() => void> = [];
  const arrivals = new EventEmitter();
  let ordersPolicy: string;
  let httpInbound: string;
  let h2cInbound: string;
  let tcpInbound: string;

  beforeAll(async () => {
    http1App = http.createServer(answer('http', slow, arrivals));
    h2cApp = http2.createServer(answer('h2c', slow, arrivals));
    tcpApp = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    const [http1Port, h2cPort, tcpPort] = await Promise.all([listening(http1App), listening(h2cApp), listening(tcpApp)]);
    mesh = await makeMesh(dir);
    const [ordersSvid] = await Promise.all([mesh.issue('orders', ORDERS_ID), mesh.issue('web', WEB_ID), mesh.issue('payments', PAYMENTS_ID)]);
    web = identityOf(dir, 'web', mesh.bundle);
    payments = identityOf(dir, 'payments', mesh.bundle);
    ordersPolicy = join(dir, 'orders-policy.yaml');
    writeFileSync(ordersPolicy, ORDERS_POLICY);
    writeFileSync(join(dir, 'grpc-policy.yaml'), GRPC_POLICY);
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: [
        { listen: '127.0.0.1:0', app: `http://127.0.0.1:${http1Port}`, policy: 'orders-policy.yaml' },
        { listen: '127.0.0.1:0', app: `h2c://127.0.0.1:${h2cPort}`, policy: 'grpc-policy.yaml' },
        { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${tcpPort}`, policy: 'orders-policy.yaml', limits: { maxConnections: 2 } },
      ],
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '20s',
    });
    [httpInbound, h2cInbound, tcpInbound] = orders.inbounds! as [string, string, string];
    const webSvid = { cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: mesh.bundle };
    webSidecar = await runSidecar(dir, 'web', {
      trustDomain: TD,
      identity: { files: webSvid },
      outbound: {
        listen: '127.0.0.1:0',
        routes: [
          { host: 'orders:9090', address: h2cInbound, spiffeId: ORDERS_ID },
          { host: 'orders', address: httpInbound, spiffeId: ORDERS_ID },
        ],
      },
      admin: { listen: '127.0.0.1:0' },
    });
    // Seven CLI processes one after another: on a loaded machine that takes longer than one hook usually may.
  }, 90_000);

  afterAll(async () => {
    await Promise.all([orders?.stop(), webSidecar?.stop()]);
    for (const release of slow.splice(0)) release();
    http1App?.close();
    h2cApp?.close();
    tcpApp?.close();
    cleanup();
  });

  it('logs every listener: `inbound` is the first, `inbounds` all of them, in the config\'s order', () => {
    expect(orders.inbounds).toHaveLength(3);
    expect(new Set(orders.inbounds).size).toBe(3);
    expect(orders.inbound).toBe(httpInbound);
  });

  // First of the tests that connect: no connection to the TCP listener is open yet.
  it('is not ready while any one listener is full, and ready again when it is not', async () => {
    expect((await httpRequest(orders.admin, '/readyz')).status).toBe(200);
    const held = await Promise.all([holdOpen(tcpInbound, payments), holdOpen(tcpInbound, payments)]);
    try {
      const full = await httpRequest(orders.admin, '/readyz');
      expect(full.status).toBe(503);
      expect(JSON.parse(full.body)).toEqual({ status: 'not ready', reason: 'the inbound[2] listener holds 2 connections, its limits.maxConnections' });
    } finally {
      for (const socket of held) socket.destroy();
    }
    // The sidecar sees the connections close a moment after the client does: ask until it says so (bounded).
    const deadline = performance.now() + 10_000;
    let ready = await httpRequest(orders.admin, '/readyz');
    while (ready.status !== 200 && performance.now() < deadline) ready = await httpRequest(orders.admin, '/readyz');
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
  });

  it('reaches each app through its own listener, and each listener decides by its own policy', async () => {
    const port = (address: string) => address.slice(address.lastIndexOf(':') + 1);
    const curl = async (address: string, path: string, version: string) => {
      const args = ['-sS', version, '--cert', join(dir, 'web.pem'), '--key', join(dir, 'web.key'), '--cacert', mesh.bundle, '-w', '\n%{http_code}', `https://localhost:${port(address)}${path}`];
      const [body = '', status] = (await run('curl', args)).stdout.split('\n');
      return { status: Number(status), body };
    };
    for (const version of ['--http1.1', '--http2']) {
      const allowed = await curl(httpInbound, '/api/orders/1', version);
      expect(allowed.status).toBe(200);
      expect(JSON.parse(allowed.body)).toEqual({ app: 'http', path: '/api/orders/1', principal: WEB_ID });
      // The gRPC path is the h2c listener's policy's business, not this one's.
      expect((await curl(httpInbound, '/orders.Orders/Get', version)).status).toBe(403);
    }

    const session = connectH2(h2cInbound, web);
    try {
      await connected(session);
      const call = await h2Request(session, { ':method': 'POST', ':path': '/orders.Orders/Get', 'content-type': 'application/grpc' }, { body: '' });
      expect(call.status).toBe(200);
      expect(JSON.parse(call.body)).toEqual({ app: 'h2c', path: '/orders.Orders/Get', principal: WEB_ID });
      const read = await h2Request(session, { ':path': '/api/orders/1' });
      expect(read.status).toBe(403);
    } finally {
      session.close();
    }

    // The TCP listener shares the first one's policy: payments may connect, web may not (its rule is for GETs).
    expect(await echoThrough(tcpInbound, payments, 'ping\n')).toBe('ping\n');
    expect(await echoThrough(tcpInbound, web, 'ping\n')).toBe('');
  });

  it("web's sidecar routes by host and port: orders:9090 to the h2c listener, orders on any other port to the HTTP one", async () => {
    const viaWeb = (host: string) => httpRequest(webSidecar.outbound!, '/api/orders/2', { headers: { host } });
    for (const host of ['orders', 'orders:8080', 'ORDERS:80']) {
      const res = await viaWeb(host);
      expect(res.status, host).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ app: 'http' });
    }
    // Port 9090 is the h2c listener's, whose policy has no rule for /api/orders.
    const grpcPort = await viaWeb('orders:9090');
    expect(grpcPort.status).toBe(403);
    expect(grpcPort.headers['x-meshward-denied-by']).toBeDefined();
    const session = connectH2(webSidecar.outbound!);
    try {
      const call = await h2Request(session, { ':method': 'POST', ':path': '/orders.Orders/List', ':authority': 'orders:9090', 'content-type': 'application/grpc' }, { body: '' });
      expect(call.status).toBe(200);
      expect(JSON.parse(call.body)).toEqual({ app: 'h2c', path: '/orders.Orders/List', principal: WEB_ID });
    } finally {
      session.close();
    }
  });

  it('loads a policy file once however many listeners name it; a change to it reaches all of them', async () => {
    const loaded = orders.output().split('\n').filter((l) => l.includes('"msg":"policy loaded"'));
    expect(loaded.filter((l) => l.includes('orders-policy.yaml'))).toHaveLength(1);
    expect(loaded.filter((l) => l.includes('grpc-policy.yaml'))).toHaveLength(1);

    // Web may now connect to the TCP port too; the HTTP listener, which shares the file, still lets it read orders.
    writeFileSync(ordersPolicy, ORDERS_POLICY.replace('principals: ["' + PAYMENTS_ID, 'principals: ["' + WEB_ID + '", "' + PAYMENTS_ID));
    await outputContaining(orders, '"trigger":"file change"');
    expect(await echoThrough(tcpInbound, web, 'pong\n')).toBe('pong\n');
    expect((await httpRequest(webSidecar.outbound!, '/api/orders/3', { headers: { host: 'orders' } })).status).toBe(200);
  });

  it('presents a new SVID on every listener once the identity rotates', async () => {
    const before = JSON.parse((await httpRequest(orders.admin, '/certs')).body) as { serial: string };
    for (const address of orders.inbounds!) expect(await servedSerial(address, web)).toBe(before.serial);
    const rotated = outputContaining(orders, '"msg":"identity rotated; new connections use it"');
    await mesh.issue('orders', ORDERS_ID);
    await rotated;
    const after = JSON.parse((await httpRequest(orders.admin, '/certs')).body) as { serial: string };
    expect(after.serial).not.toBe(before.serial);
    for (const address of orders.inbounds!) expect(await servedSerial(address, web)).toBe(after.serial);
  });

  it('drains every listener on SIGTERM: requests in flight on each finish, then it exits 0', async () => {
    const bothArrived = new Promise<void>((resolve) => {
      let count = 0;
      const arrived = () => {
        if (++count < 2) return;
        arrivals.off('slow', arrived);
        resolve();
      };
      arrivals.on('slow', arrived);
    });
    const released = slow.length;
    const viaHttp = httpRequest(webSidecar.outbound!, '/api/orders/slow', { headers: { host: 'orders' } });
    const session = connectH2(h2cInbound, web);
    const viaH2c = h2Request(session, { ':method': 'POST', ':path': '/orders.Orders/slow', 'content-type': 'application/grpc' }, { body: '', waitMs: 20_000 });
    await bothArrived;
    const exit = stopChild(orders.child, 'SIGTERM');
    await outputContaining(orders, '"msg":"draining"');
    for (const release of slow.splice(released)) release();
    const [h1, h2] = await Promise.all([viaHttp, viaH2c]);
    session.close();
    expect(h1.status).toBe(200);
    expect(JSON.parse(h1.body)).toMatchObject({ app: 'http', path: '/api/orders/slow' });
    expect(h2.status).toBe(200);
    expect(JSON.parse(h2.body)).toMatchObject({ app: 'h2c', path: '/orders.Orders/slow' });
    expect(await exit).toBe(0);
  });
});

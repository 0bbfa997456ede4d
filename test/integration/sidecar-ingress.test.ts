// The edge (issue 15, section 2): `ingress:` on a real `meshward sidecar`. Clients outside the mesh (curl, node:http2,
// a raw TLS socket) hold no SVID and trust a CA made with openssl; their requests are routed by path and method and
// sent over mTLS to orders's real sidecar, whose policy sees web's SPIFFE ID as the caller.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { publicCertificate, startEdge, type Edge } from '../helpers/edge.js';
import { httpRequest, makeMesh, ORDERS_ID, outputContaining, WEB_ID, type Mesh } from '../helpers/sidecar.js';

const run = promisify(execFile);
const ADMIN_ID = `spiffe://${TD}/ns/default/sa/admin`;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

const { dir, cleanup } = tempDir('meshward-ingress-');
let mesh: Mesh;
let app: http.Server;
let appUrl: string;
let edge: Edge;
const seen: Seen[] = [];
/** Requests to /hold wait here until the test answers them. */
const held: http.ServerResponse[] = [];
const arrivals = new EventTarget();

beforeAll(async () => {
  app = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url === '/api/orders/hold') {
      held.push(res);
      arrivals.dispatchEvent(new Event('held'));
      return;
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ saw: `${req.method} ${req.url}` }));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  mesh = await makeMesh(dir);
  edge = await startEdge(mesh, {
    app: appUrl,
    ingress: {
      routes: [
        { prefix: '/api/orders', methods: ['GET', 'PUT'], to: 'orders' },
        { prefix: '/public', to: 'orders', filters: { headers: false } },
        { prefix: '/other/', to: 'orders', filters: { headers: { response: { set: { 'x-edge': 'other' } } } } },
        { prefix: '/impostor', to: 'impostor' },
      ],
      filters: [{ headers: { response: { set: { 'x-edge': 'yes' } } } }],
    },
    // A route whose destination must prove an identity orders's sidecar does not hold.
    outboundRoutes: (orders) => [{ host: 'impostor', address: orders, spiffeId: `spiffe://${TD}/ns/default/sa/impostor` }],
  });
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  cleanup();
});

/** curl as a client outside the mesh: it verifies the edge's certificate and has none of its own. */
async function curl(...args: string[]): Promise<{ status: number; version: string; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-i', '--cacert', edge.certificate.root, ...args]);
  const [head, ...rest] = stdout.split('\r\n\r\n');
  const status = /^HTTP\/(\S+) (\d{3})/.exec(head!);
  return { version: status![1]!, status: Number(status![2]), headers: head!, body: rest.join('\r\n\r\n') };
}

/** One request over HTTP/2 with node:http2 (ALPN h2), trusting the public CA. */
async function h2(path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  const session = http2.connect(edge.url, { ca: readFileSync(edge.certificate.root) });
  try {
    const stream = session.request({ ':path': path, ...headers });
    const [response] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    let body = '';
    for await (const chunk of stream) body += (chunk as Buffer).toString();
    return { status: Number(response[':status']), headers: response, body };
  } finally {
    session.close();
  }
}

describe('ingress: clients outside the mesh, over TLS, to a mesh service over mTLS', () => {
  it("serves curl over HTTP/1.1 and HTTP/2 with no client certificate; orders's policy sees web's SPIFFE ID", async () => {
    for (const [flag, version] of [['--http1.1', '1.1'], ['--http2', '2']] as const) {
      const before = seen.length;
      const res = await curl(flag, `${edge.url}/api/orders/7`);
      expect(res, flag).toMatchObject({ status: 200, version, body: '{"saw":"GET /api/orders/7"}' });
      const { headers } = seen[before]!;
      expect(headers['x-meshward-principal']).toBe(WEB_ID);
      expect(headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${ORDERS_ID};Hash=[0-9a-f]{64};URI=${WEB_ID}$`));
      // The destination is called by its route's name; what the client called is passed on, as every edge proxy does.
      expect(headers.host).toBe('orders');
      expect(headers).toMatchObject({ 'x-forwarded-host': edge.url.slice('https://'.length), 'x-forwarded-proto': 'https', 'x-forwarded-for': '127.0.0.1' });
    }
  });

  it('serves node:http2', async () => {
    const res = await h2('/api/orders/8');
    expect(res).toMatchObject({ status: 200, body: '{"saw":"GET /api/orders/8"}' });
    expect(res.headers['x-edge']).toBe('yes');
    expect(seen.at(-1)!.headers['x-meshward-principal']).toBe(WEB_ID);
  });

  it('routes by path prefix (whole segments, the normalised path) and method; anything else is 404 JSON, unseen by the app', async () => {
    const before = seen.length;
    expect((await edge.fetch('/api/orders')).status).toBe(200);
    expect((await edge.fetch('/api/orders/1', { method: 'PUT', body: '{}' })).status).toBe(200);
    for (const [method, path] of [['DELETE', '/api/orders/1'], ['GET', '/api/ordersx'], ['GET', '/'], ['POST', '/api/orders']] as const) {
      const res = await edge.fetch(path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toMatchObject({ error: 'not_found', reason: 'no route for this path and method' });
    }
    // The route is chosen by the path the destination gets: /public/.. cannot reach the /api/orders route unseen.
    const dotted = await curl('--path-as-is', `${edge.url}/public/../api/orders/2`);
    expect(dotted.status).toBe(200);
    expect(dotted.headers).toMatch(/^x-edge: yes$/m);
    expect((await curl(`${edge.url}/public/%2e%2e/api/orders/3`)).status).toBe(200);
    expect((await curl(`${edge.url}/public/..%2Fapi/orders/4`)).status).toBe(400);
    expect(seen.slice(before).map((s) => `${s.method} ${s.url}`)).toEqual(['GET /api/orders', 'PUT /api/orders/1', 'GET /api/orders/2', 'GET /api/orders/3']);
    const h2NoRoute = await h2('/nowhere');
    expect(h2NoRoute.status).toBe(404);
  });

  it('lets a route turn a filter off, or give it settings of its own', async () => {
    for (const [path, tag] of [['/api/orders/5', 'yes'], ['/public/x', null], ['/other/x', 'other']] as const) {
      expect((await edge.fetch(path)).headers.get('x-edge'), path).toBe(tag);
      expect((await h2(path)).headers['x-edge'], path).toBe(tag ?? undefined);
    }
  });

  it('never passes identity headers a client sends, in any spelling, over either HTTP version', async () => {
    const forged = { 'x-meshward-principal': ADMIN_ID, 'x-forwarded-client-cert': `By=${ORDERS_ID};URI=${ADMIN_ID}`, x_meshward_principal: ADMIN_ID };
    for (const version of ['HTTP/1.1', 'HTTP/2']) {
      const before = seen.length;
      const status = version === 'HTTP/2' ? (await h2('/api/orders/6', forged)).status : (await edge.fetch('/api/orders/6', { headers: forged })).status;
      expect(status, version).toBe(200);
      const { headers } = seen[before]!;
      expect(headers['x-meshward-principal']).toBe(WEB_ID);
      expect(headers['x-forwarded-client-cert']).toMatch(new RegExp(`URI=${WEB_ID}$`));
      expect(JSON.stringify(headers)).not.toContain(ADMIN_ID);
    }
  });

  it('answers 502 without naming the mesh when a destination proves another identity than its route names', async () => {
    const res = await edge.fetch('/impostor/x');
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(JSON.parse(body)).toMatchObject({ error: 'bad_gateway' });
    expect(body).not.toContain('spiffe://');
    await outputContaining(edge.web, 'forwarding to the destination failed');
  });

  it('counts its requests as direction="ingress" in /metrics', async () => {
    const metrics = (await httpRequest(edge.web.admin, '/metrics')).body;
    expect(metrics).toMatch(/^meshward_requests_total\{direction="ingress",decision="none",status="200"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^meshward_requests_total\{direction="ingress",decision="none",status="404"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^meshward_request_duration_seconds_count\{direction="ingress"\} [1-9]\d*$/m);
  });

  it('offers a new certificate once its files change, and keeps the last good one while the pair does not hold together', async () => {
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: edge.port, servername: 'localhost', ca: readFileSync(edge.certificate.root) }, () => {
          resolve(socket.getPeerX509Certificate()!.fingerprint256);
          socket.end();
        });
        socket.on('error', reject);
      });
    const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
    expect(await served()).toBe(fingerprint(edge.certificate.cert));
    const next = publicCertificate(dir, 'edge-next');
    // The certificate first (renamed over the old, as ACME clients and cert-manager write): its key is not there yet.
    renameSync(next.cert, edge.certificate.cert);
    await outputContaining(edge.web, 'server certificate files rejected; the last good certificate stays in use');
    expect(edge.web.output()).toMatch(/"error":"[^"]*edge\.key: the private key does not match the certificate in [^"]*edge\.pem"/);
    expect(await served()).not.toBe(fingerprint(edge.certificate.cert));
    renameSync(next.key, edge.certificate.key);
    await outputContaining(edge.web, 'server certificate reloaded; new connections use it');
    expect(await served()).toBe(fingerprint(edge.certificate.cert));
    expect((await curl(`${edge.url}/api/orders/9`)).status).toBe(200);
  });
});

describe('ingress: limits, readiness and drain', () => {
  let small: Edge;
  beforeAll(async () => {
    small = await startEdge(mesh, {
      name: 'small',
      app: appUrl,
      ingress: { routes: [{ prefix: '/', to: 'orders' }], limits: { maxConnections: 1, maxBodyBytes: 1024 } },
    });
  }, 120_000);
  afterAll(() => small?.stop());

  it('refuses a body over its limits.maxBodyBytes with 413', async () => {
    const res = await small.fetch('/api/orders/1', { method: 'PUT', body: 'x'.repeat(2048) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'payload_too_large', limitBytes: 1024 });
  });

  it('is not ready while it holds limits.maxConnections connections; SIGTERM lets the request in flight finish, exit 0', async () => {
    const arrived = once(arrivals, 'held');
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: small.port, servername: 'localhost', path: '/api/orders/hold', ca: readFileSync(small.certificate.root), agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    await arrived;
    const readyz = await httpRequest(small.web.admin, '/readyz');
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body)).toMatchObject({ reason: 'the ingress listener holds 1 connections, its limits.maxConnections' });
    const exited = once(small.web.child, 'exit');
    small.web.child.kill('SIGTERM');
    await outputContaining(small.web, '"msg":"draining"');
    const res = held.shift()!;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('released');
    expect(await inFlight).toEqual({ status: 200, body: 'released' });
    expect((await exited)[0]).toBe(0);
  });
});

describe('ingress: the config', () => {
  const config = (ingress: object, outboundRoutes: object[] = [{ host: 'orders', address: '127.0.0.1:1', spiffeId: ORDERS_ID }]) => {
    const file = join(dir, `check-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        trustDomain: TD,
        identity: { files: { cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: mesh.bundle } },
        outbound: { listen: '127.0.0.1:0', routes: outboundRoutes },
        ingress: { listen: '127.0.0.1:0', tls: { cert: edge.certificate.cert, key: edge.certificate.key }, ...ingress },
        admin: { listen: '127.0.0.1:0' },
      }),
    );
    return file;
  };

  it('is checked by --check-config, which prints its chain', async () => {
    const file = config({ routes: [{ prefix: '/', to: 'orders', filters: { cors: false } }], filters: [{ cors: { allowOrigins: ['https://app.example.com'] } }, { headers: { securityHeaders: true } }] });
    const checked = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(checked.stderr).toBe('');
    expect(checked.stdout).toBe(`${file}: OK; outbound: headerChecks → limits; ingress: headerChecks → limits → cors → headers\n`);
  });

  it('refuses what cannot work, every problem named by its path, at --check-config and at start', async () => {
    const file = config({
      routes: [
        { prefix: '/api/../admin', to: 'orders', filters: { cors: false } },
        { prefix: '/', to: 'x', methods: ['get'] },
      ],
    });
    const refused = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file}: ingress.routes[0].prefix: "/api/../admin" is not a normalised path`);
    expect(refused.stderr).toContain(`${file}: ingress.routes[1].to: no outbound route for host "x"`);
    expect(refused.stderr).toContain(`${file}: ingress.routes[1].methods[0]: must be an HTTP method in capitals`);

    const noFilter = config({ routes: [{ prefix: '/', to: 'orders', filters: { cors: false } }] });
    expect((await runCli(['sidecar', '--config', noFilter, '--check-config'])).stderr).toContain(
      `${noFilter}: ingress.routes[0].filters.cors: the ingress listener has no "cors" filter for this route to change (its filters list is empty)`,
    );

    // The key of another certificate: the pair does not hold together.
    const other = publicCertificate(dir, 'edge-other');
    const mismatched = join(dir, 'check-mismatched.yaml');
    writeFileSync(mismatched, readFileSync(config({ routes: [{ prefix: '/', to: 'orders' }] }), 'utf8').replace(JSON.stringify(edge.certificate.key), JSON.stringify(other.key)));
    const expected = `${mismatched}: ingress.tls: ${other.key}: the private key does not match the certificate in ${edge.certificate.cert}`;
    expect((await runCli(['sidecar', '--config', mismatched, '--check-config'])).stderr).toContain(expected);
    const started = await runCli(['sidecar', '--config', mismatched]);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(expected);
  });
});

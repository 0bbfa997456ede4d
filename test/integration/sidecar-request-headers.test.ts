// The header block as an attacker writes it, on both listeners and both HTTP versions: a Host that URL parsers
// read as another host, Host and :authority that disagree, and meshward's identity headers spelled with
// underscores. Raw sockets and Node's http2 client send exactly these bytes; a real sidecar pair judges them.
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { makeMesh, ORDERS_ID, runPair, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

interface Answer {
  status: number;
  body: string;
}

const HOSTILE_AUTHORITIES = [
  'orders:1@admin.internal',
  'orders@admin.internal',
  'orders:abc/../x',
  'orders/x',
  'orders:0',
  'orders:65536',
  'orders:',
  'orders%2fadmin',
  'orders\\admin',
  'orders?x',
  'orders#x',
  '[::1',
  '[zz::1]:80',
];

/** One HTTP/1.1 request written byte for byte on a fresh connection; resolves with the status and body. */
function rawHttp1(socket: net.Socket, head: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(`${head}Connection: close\r\n\r\n`);
  });
}

/** An HTTP/2 request; a stream the server's HTTP/2 layer refused as malformed (RST_STREAM PROTOCOL_ERROR) is status 0. */
function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ...headers }, { endStream: true });
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => (body += c.toString()));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', (err: Error & { code?: string }) => {
      if (stream.rstCode === http2.constants.NGHTTP2_PROTOCOL_ERROR) resolve({ status: 0, body: '' });
      else reject(err);
    });
  });
}

const split = (address: string) => ({ host: address.slice(0, address.lastIndexOf(':')), port: Number(address.slice(address.lastIndexOf(':') + 1)) });

describe('sidecar: Host, :authority and header names as an attacker spells them', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  let appUrl: string;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  let client: { cert: Buffer; key: Buffer; ca: Buffer };
  const seen: http.IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      seen.push(req.headers);
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: appUrl }));
    client = { cert: readFileSync(join(dir, 'web.pem')), key: readFileSync(join(dir, 'web.key')), ca: readFileSync(mesh.bundle) };
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.close();
    cleanup();
  });

  const outboundHttp1 = (head: string) => rawHttp1(net.connect(split(web.outbound!)), head);
  const inboundHttp1 = (head: string) => rawHttp1(tls.connect({ ...split(orders.inbound!), ...client, servername: 'localhost', ALPNProtocols: ['http/1.1'] }), head);

  async function withH2<T>(url: string, options: http2.SecureClientSessionOptions, use: (s: http2.ClientHttp2Session) => Promise<T>): Promise<T> {
    const session = http2.connect(url, options);
    try {
      return await use(session);
    } finally {
      session.close();
    }
  }
  const outboundH2 = <T>(use: (s: http2.ClientHttp2Session) => Promise<T>) => withH2(`http://${web.outbound!}`, {}, use);
  const inboundH2 = <T>(use: (s: http2.ClientHttp2Session) => Promise<T>) => withH2(`https://${orders.inbound!}`, { ...client, servername: 'localhost' }, use);

  it('refuses a Host that is not HOST[:PORT] with 400, on both listeners and both HTTP versions, before the app', async () => {
    const before = seen.length;
    for (const authority of HOSTILE_AUTHORITIES) {
      for (const [listener, send] of [['outbound', outboundHttp1], ['inbound', inboundHttp1]] as const) {
        const res = await send(`GET /api/orders/1 HTTP/1.1\r\nHost: ${authority}\r\n`);
        expect(res.status, `${listener} HTTP/1.1 Host ${authority}`).toBe(400);
        expect(JSON.parse(res.body), `${listener} HTTP/1.1 Host ${authority}`).toMatchObject({ error: 'bad_request' });
      }
      // nghttp2 itself resets a stream whose :authority has characters RFC 3986 never allows there (`/`, `\\`,
      // `?`, `#`, `@`); what it lets through (`%`, a port out of range) meshward answers with 400.
      const viaOutbound = await outboundH2((s) => h2Request(s, { ':path': '/api/orders/1', ':authority': authority }));
      expect([0, 400], `outbound HTTP/2 :authority ${authority}`).toContain(viaOutbound.status);
      const viaInbound = await inboundH2((s) => h2Request(s, { ':path': '/api/orders/1', ':authority': authority }));
      expect([0, 400], `inbound HTTP/2 :authority ${authority}`).toContain(viaInbound.status);
      if (/:(0|65536)$/.test(authority)) expect([viaOutbound.status, viaInbound.status], authority).toEqual([400, 400]);
    }
    expect(seen.length).toBe(before);
    // The well-formed spellings still pass: a port, a trailing dot, upper case.
    for (const authority of ['orders', 'orders:8080', 'ORDERS.', 'orders.:443']) {
      expect((await outboundHttp1(`GET /api/orders/1 HTTP/1.1\r\nHost: ${authority}\r\n`)).status, authority).toBe(200);
    }
  });

  it('refuses HTTP/2 requests whose Host names another host than :authority (400), and two Host headers over HTTP/1.1', async () => {
    const before = seen.length;
    const mixed = { ':path': '/api/orders/1', ':authority': 'orders', host: 'admin.internal' };
    expect((await outboundH2((s) => h2Request(s, mixed))).status).toBe(400);
    expect((await inboundH2((s) => h2Request(s, mixed))).status).toBe(400);
    expect((await outboundH2((s) => h2Request(s, { ...mixed, host: 'ORDERS' }))).status).toBe(200);
    for (const send of [outboundHttp1, inboundHttp1]) {
      expect((await send('GET /api/orders/1 HTTP/1.1\r\nHost: orders\r\nHost: admin.internal\r\n')).status).toBe(400);
    }
    expect(seen.length).toBe(before + 1);
  });

  it("never lets meshward's identity headers through under an underscore spelling, and drops other underscore names by default", async () => {
    const forged = `spiffe://${TD}/ns/default/sa/admin`;
    const spellings = `x_forwarded_client_cert: By=x;URI=${forged}\r\nX_Meshward_Principal: ${forged}\r\nx-meshward_principal: ${forged}\r\nx_request_id: forged\r\nx_user: mallory\r\n`;
    for (const send of [outboundHttp1, inboundHttp1]) {
      expect((await send(`GET /api/orders/2 HTTP/1.1\r\nHost: orders\r\n${spellings}`)).status).toBe(200);
      const got = seen.at(-1)!;
      expect(Object.keys(got).filter((name) => name.includes('_'))).toEqual([]);
      expect(got['x-meshward-principal']).toBe(WEB_ID);
    }
    const h2 = await outboundH2((s) => h2Request(s, { ':path': '/api/orders/3', ':authority': 'orders', x_forwarded_client_cert: `URI=${forged}`, x_user: 'mallory' }));
    expect(h2.status).toBe(200);
    expect(Object.keys(seen.at(-1)!).filter((name) => name.includes('_'))).toEqual([]);
  });

  it('replaces a caller request id that could be a credential, on both hops, so the app never sees it', async () => {
    const jwtLike = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3ZWIifQ.c2lnbmF0dXJlc2lnbmF0dXJl';
    for (const send of [outboundHttp1, inboundHttp1]) {
      expect((await send(`GET /api/orders/6 HTTP/1.1\r\nHost: orders\r\nx-request-id: ${jwtLike}\r\n`)).status).toBe(200);
      expect(seen.at(-1)!['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
    expect((await outboundHttp1('GET /api/orders/6 HTTP/1.1\r\nHost: orders\r\nx-request-id: renew-web-1\r\n')).status).toBe(200);
    expect(seen.at(-1)!['x-request-id']).toBe('renew-web-1');
  });

  it('refuses underscore names with 400 under headersWithUnderscores: reject, and under allow still strips the identity spellings', async () => {
    const pair = await runPair(mesh, {
      app: appUrl,
      inboundExtra: { headersWithUnderscores: 'allow' },
      webExtra: { outbound: { listen: '127.0.0.1:0', headersWithUnderscores: 'reject', routes: [{ host: 'orders', address: orders.inbound, spiffeId: ORDERS_ID }] } },
    });
    try {
      const refused = await rawHttp1(net.connect(split(pair.web.outbound!)), 'GET /api/orders/4 HTTP/1.1\r\nHost: orders\r\nx_user: mallory\r\n');
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body).reason).toContain('x_user');
      const allowed = await rawHttp1(
        tls.connect({ ...split(pair.orders.inbound!), ...client, servername: 'localhost', ALPNProtocols: ['http/1.1'] }),
        `GET /api/orders/5 HTTP/1.1\r\nHost: orders\r\nx_user: alice\r\nx_forwarded_client_cert: URI=spiffe://${TD}/ns/default/sa/admin\r\n`,
      );
      expect(allowed.status).toBe(200);
      expect(seen.at(-1)!['x_user']).toBe('alice');
      expect(seen.at(-1)!['x_forwarded_client_cert']).toBeUndefined();
    } finally {
      await Promise.all([pair.orders.stop(), pair.web.stop()]);
    }
  });
});

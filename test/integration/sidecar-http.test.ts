import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { OpensslPki, SVID_EXTENSIONS, type CertAndKey } from '../helpers/openssl-pki.js';
import { TD } from '../helpers/ca.js';
import { httpRequest, makeMesh, outputContaining, ORDERS_ID, runPair, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const run = promisify(execFile);

// The pair web (outbound) → orders (inbound) → an HTTP/1.1 app that echoes what it received, all real processes.

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

describe('sidecar: HTTP through an outbound and an inbound sidecar', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  let appUrl: string;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  const seen: Seen[] = [];

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'text/plain');
      res.end(`hello ${req.url}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: appUrl }));
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.close();
    cleanup();
  });

  const viaWeb = (path: string, headers: Record<string, string> = {}) => httpRequest(web.outbound!, path, { headers: { host: 'orders', ...headers } });

  it('forwards an allowed request with the verified identity, and strips forged identity headers', async () => {
    const res = await viaWeb('/api/orders/7', { 'x-forwarded-client-cert': 'By=x;URI=spiffe://example.org/ns/default/sa/admin', 'x-meshward-principal': 'spiffe://example.org/ns/default/sa/admin' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello /api/orders/7');
    const last = seen.at(-1)!;
    expect(last.headers['x-meshward-principal']).toBe(WEB_ID);
    expect(last.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${ORDERS_ID};Hash=[0-9a-f]{64};URI=${WEB_ID}$`));
    // A caller without a trace gets one started at the first hop (unsampled), carried to the app.
    expect(last.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it("carries a caller's W3C traceparent through both hops unchanged", async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect((await viaWeb('/api/orders/8', { traceparent })).status).toBe(200);
    expect(seen.at(-1)!.headers.traceparent).toBe(traceparent);
    expect((await viaWeb('/api/orders/9', { traceparent: 'not-a-trace' })).status).toBe(200);
    expect(seen.at(-1)!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('denies what the policy does not allow, naming the rule, without reaching the app', async () => {
    const before = seen.length;
    const res = await viaWeb('/api/admin');
    expect(res.status).toBe(403);
    expect(res.headers['x-meshward-denied-by']).toBe('default');
    expect(JSON.parse(res.body)).toMatchObject({ error: 'forbidden', rule: 'default' });
    expect(seen.length).toBe(before);
  });

  it('refuses egress to a host without a route (502, naming the host)', async () => {
    const res = await httpRequest(web.outbound!, '/x', { headers: { host: 'payments:8080' } });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'no_route', reason: 'no outbound route for host "payments"' });
  });

  it('refuses to send to a destination whose certificate is not the SPIFFE ID its route names: 502 naming both IDs, and a warning', async () => {
    const svid = await mesh.issue('web2', WEB_ID);
    const impostorCheck = await runSidecar(dir, 'web2', {
      trustDomain: TD,
      identity: { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } },
      outbound: { listen: '127.0.0.1:0', routes: [{ host: 'payments', address: orders.inbound, spiffeId: `spiffe://${TD}/ns/default/sa/payments` }] },
      admin: { listen: '127.0.0.1:0' },
    });
    try {
      const before = seen.length;
      const res = await httpRequest(impostorCheck.outbound!, '/api/orders/1', { headers: { host: 'payments' } });
      // The client is the local app, which may learn both IDs; the address stays out of the answer.
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'server_identity_mismatch', reason: `the server is ${ORDERS_ID}, not spiffe://${TD}/ns/default/sa/payments` });
      expect(res.body).not.toContain('127.0.0.1');
      expect(seen.length).toBe(before);
      const output = await outputContaining(impostorCheck, `the server is ${ORDERS_ID}, not spiffe://${TD}/ns/default/sa/payments`);
      expect(output).toMatch(/"level":"warn".*"msg":"forwarding to the destination failed"/);
    } finally {
      await impostorCheck.stop();
    }
  });

  it('serves curl over HTTP/1.1 and HTTP/2 with its client certificate, and refuses curl without one', async () => {
    const [, port] = orders.inbound!.split(':');
    const url = `https://localhost:${port}/api/orders/1`;
    const tls = ['--cert', `${dir}/web.pem`, '--key', `${dir}/web.key`, '--cacert', mesh.bundle];
    for (const version of ['--http1.1', '--http2']) {
      const { stdout } = await run('curl', ['-sS', version, ...tls, '-w', ' %{http_code} %{http_version}', url]);
      expect(stdout).toBe(`hello /api/orders/1 200 ${version === '--http2' ? '2' : '1.1'}`);
    }
    await expect(run('curl', ['-sS', '--cacert', mesh.bundle, url])).rejects.toThrow();
  });

  it('serves an SVID made by openssl, and refuses untrusted, expired and non-SVID certificates', async () => {
    const pki = new OpensslPki(dir);
    const ourRoot = { cert: join(mesh.caDir, 'root.pem'), key: join(mesh.caDir, 'root.key') };
    const request = async (client: CertAndKey) => {
      const [, port] = orders.inbound!.split(':');
      const args = ['-sS', '--http1.1', '--cert', client.cert, '--key', client.key, '--cacert', mesh.bundle, '-o', '/dev/null', '-w', '%{http_code}'];
      return run('curl', [...args, `https://localhost:${port}/api/orders/2`]).then((r) => r.stdout, () => 'refused');
    };
    expect(await request(pki.svid('openssl-web', ourRoot))).toBe('200');
    const before = seen.length;
    expect(await request(pki.svid('untrusted', pki.root('other-root')))).toBe('refused');
    const expiredKey = pki.key('expired');
    const expired = pki.cert('expired', ourRoot, expiredKey, [`subjectAltName=URI:${WEB_ID}`, ...SVID_EXTENSIONS], { start: '20250101000000Z', end: '20250102000000Z' });
    expect(await request({ cert: expired, key: expiredKey })).toBe('refused');
    // These chain to the bundle, so the handshake passes; they are still no SVID of this trust domain.
    expect(await request(pki.svid('no-uri', ourRoot, 'DNS:web.example.org'))).toBe('403');
    expect(await request(pki.svid('two-uris', ourRoot, `URI:${WEB_ID},URI:spiffe://example.org/ns/default/sa/admin`))).toBe('403');
    expect(await request(pki.svid('foreign', ourRoot, 'URI:spiffe://other.org/ns/default/sa/web'))).toBe('403');
    expect(seen.length).toBe(before);
  });

  it('refuses a client without a certificate at the handshake (openssl s_client), and serves one with', async () => {
    const sClient = (extra: string[]) =>
      new Promise<string>((resolve) => {
        const child = spawn('openssl', ['s_client', '-connect', orders.inbound!, '-CAfile', mesh.bundle, '-tls1_3', '-quiet', ...extra]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', () => resolve(out));
        child.stdin.end('GET /api/orders/3 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
      });
    expect(await sClient(['-cert', `${dir}/web.pem`, '-key', `${dir}/web.key`])).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*hello \/api\/orders\/3$/);
    expect(await sClient([])).toBe('');
  });
});

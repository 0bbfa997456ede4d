import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { connectH2, h2Request, identityOf } from '../helpers/h2-client.js';
import { makeMesh, startHttpApp, type Mesh } from '../helpers/sidecar.js';

// Requests that a filter reads one way and the app another, sent as an attacker outside the mesh would: a real
// `meshward sidecar` ingress (and the outbound and inbound listeners of the same mesh), node's clients over HTTP/1.1
// and HTTP/2 writing the header lines as given. The app records what reaches it.

interface Seen {
  url: string;
  rawHeaders: string[];
}

interface Answer {
  status: number;
  body: string;
}

describe('requests a filter and the app could read differently', () => {
  const { dir, cleanup } = tempDir('meshward-edge-ambiguity-');
  const seen: Seen[] = [];
  let app: { server: http.Server; url: string };
  let mesh: Mesh;
  let edge: Edge;

  beforeAll(async () => {
    app = await startHttpApp((req, res) => {
      seen.push({ url: req.url!, rawHeaders: req.rawHeaders });
      res.end('ok');
    });
    mesh = await makeMesh(dir);
    edge = await startEdge(mesh, { app: app.url, ingress: { routes: [{ prefix: '/', to: 'orders' }] } });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((done) => app?.server.close(() => done()));
    cleanup();
  });

  /** HTTP/1.1 to the ingress (TLS), the outbound listener (plain) or the inbound one (mTLS as web), each header line as given. */
  function h1(listener: 'ingress' | 'outbound' | 'inbound', path: string, headers: Record<string, string | string[]>): Promise<Answer> {
    const address = listener === 'ingress' ? edge.web.ingress! : listener === 'outbound' ? edge.web.outbound! : edge.orders.inbound!;
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const tls =
      listener === 'ingress'
        ? { ca: readFileSync(edge.certificate.root), servername: 'localhost' }
        : { ...identityOf(dir, 'web', mesh.bundle), servername: 'localhost' };
    return new Promise((resolve, reject) => {
      const options = { host: '127.0.0.1', port, path, headers: { host: listener === 'ingress' ? 'localhost' : 'orders', ...headers }, agent: false as const };
      const done = (res: http.IncomingMessage) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      };
      const req = listener === 'outbound' ? http.request(options, done) : https.request({ ...options, ...tls }, done);
      req.on('error', reject);
      req.end();
    });
  }

  /** HTTP/2 to the ingress or the inbound listener (ALPN h2), or the outbound one (h2c): header lines as given, repeats too. */
  async function h2(listener: 'ingress' | 'outbound' | 'inbound', path: string, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
    const lenient = { strictSingleValueFields: false } as http2.SecureClientSessionOptions;
    const session =
      listener === 'ingress'
        ? http2.connect(edge.url, { ca: readFileSync(edge.certificate.root), ...lenient })
        : listener === 'outbound'
          ? connectH2(edge.web.outbound!, undefined, lenient)
          : connectH2(edge.orders.inbound!, identityOf(dir, 'web', mesh.bundle), lenient);
    session.on('error', () => undefined);
    try {
      const authority = listener === 'ingress' ? `localhost:${edge.port}` : 'orders';
      const answer = await h2Request(session, { ':path': path, ':authority': authority, ...headers });
      return { status: answer.status, body: answer.body };
    } finally {
      session.close();
    }
  }

  it('refuses a second Authorization, Proxy-Authorization or Content-Type (400) on every listener, over HTTP/1.1 and HTTP/2; the app sees none', async () => {
    seen.length = 0;
    const repeats: Record<string, string[]> = {
      authorization: ['Basic dXNlcjpwYXNz', 'Bearer forged'],
      'proxy-authorization': ['Basic a', 'Basic b'],
      'content-type': ['text/plain', 'application/json'],
    };
    for (const listener of ['ingress', 'outbound', 'inbound'] as const) {
      for (const [name, values] of Object.entries(repeats)) {
        const over1 = await h1(listener, '/orders', { [name]: values });
        expect(over1.status, `${listener} HTTP/1.1 ${name}`).toBe(400);
        expect(JSON.parse(over1.body).reason).toBe(`the request has more than one ${name} header`);
        const over2 = await h2(listener, '/orders', { [name]: values });
        expect(over2.status, `${listener} HTTP/2 ${name}`).toBe(400);
      }
    }
    expect(seen).toEqual([]);
    // One of each passes.
    expect((await h1('ingress', '/orders', { authorization: 'Bearer one', 'content-type': 'text/plain' })).status).toBe(200);
    expect((await h2('ingress', '/orders', { authorization: 'Bearer one', 'content-type': 'text/plain' })).status).toBe(200);
  });

  it('the ingress forwards no header of the client that restates the path, method, client, host or scheme, in any spelling, over HTTP/1.1 and HTTP/2', async () => {
    const restating = {
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      'x-forwarded-prefix': '/admin',
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
      forwarded: 'for=10.0.0.1;host=admin.internal;proto=http',
      'x-real-ip': '10.0.0.1',
      'x-forwarded-port': '80',
    };
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      seen.length = 0;
      const answer = version === 'HTTP/1.1' ? await h1('ingress', '/orders', restating) : await h2('ingress', '/orders', restating);
      expect(answer.status, version).toBe(200);
      const names = seen[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      for (const name of Object.keys(restating)) expect(names, `${version} ${name}`).not.toContain(name);
    }
    // The spelling with `_` (which WSGI and CGI servers read as the same header), where every hop allows underscores.
    const allowing = await startEdge(mesh, {
      app: app.url,
      name: 'allow-underscores',
      ingress: { routes: [{ prefix: '/', to: 'orders' }], headersWithUnderscores: 'allow' },
      ordersInbound: { headersWithUnderscores: 'allow' },
    });
    try {
      seen.length = 0;
      const res = await allowing.fetch('/orders', { headers: { x_original_url: '/admin', 'x-kept_header': 'yes' } });
      expect(res.status).toBe(200);
      const names = seen[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      expect(names).not.toContain('x_original_url');
      expect(names).toContain('x-kept_header');
    } finally {
      await allowing.stop();
    }
  });

  it('the ingress refuses a path with parameters (";", "%3B") over HTTP/1.1 and HTTP/2: servers that drop them would serve another route', async () => {
    seen.length = 0;
    for (const path of ['/admin;jsessionid=1', '/orders/..;/admin', '/orders/a%3bb', '/orders/1;x?y=1']) {
      for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
        const answer = version === 'HTTP/1.1' ? await h1('ingress', path, {}) : await h2('ingress', path, {});
        expect(answer.status, `${version} ${path}`).toBe(400);
        expect(JSON.parse(answer.body).reason).toContain('";"');
      }
    }
    expect(seen).toEqual([]);
    // In the query a ";" is data.
    expect((await h1('ingress', '/orders?q=a;b', {})).status).toBe(200);
  });

  it('refuses a method not in capitals on every listener: over HTTP/2 `delete` took a route DELETE does not, to apps that read it as DELETE', async () => {
    // DELETE of /orders is refused to everyone; other requests pass. (Before, `delete` took the second route, past the
    // ipList; Node's HTTP/1.1 app here refused it, an app that upper-cases methods would have served it.)
    const strict = await startEdge(mesh, {
      app: app.url,
      name: 'method-case',
      ingress: {
        routes: [
          { prefix: '/orders', methods: ['DELETE'], to: 'orders' },
          { prefix: '/', to: 'orders', filters: { ipList: false } },
        ],
        filters: [{ ipList: { deny: ['0.0.0.0/0', '::/0'] } }],
      },
    });
    try {
      const session = http2.connect(strict.url, { ca: readFileSync(strict.certificate.root) });
      session.on('error', () => undefined);
      try {
        expect((await h2Request(session, { ':method': 'DELETE', ':path': '/orders/1' })).status).toBe(403);
        seen.length = 0;
        const lower = await h2Request(session, { ':method': 'delete', ':path': '/orders/1' });
        expect(lower.status).toBe(400);
        expect(JSON.parse(lower.body).reason).toBe('the method "delete" is not in capitals');
        expect(seen).toEqual([]);
      } finally {
        session.close();
      }
    } finally {
      await strict.stop();
    }
    for (const listener of ['ingress', 'outbound', 'inbound'] as const) {
      expect((await h2(listener, '/orders', { ':method': 'Get' })).status, listener).toBe(400);
    }
    expect(seen).toEqual([]);
  });

  it('the ingress refuses a path that takes another route when its case is ignored, over HTTP/1.1 and HTTP/2', async () => {
    // /admin is refused to everyone; the rest passes. Express and ASP.NET Core serve /ADMIN from /admin.
    const guarded = await startEdge(mesh, {
      app: app.url,
      name: 'path-case',
      ingress: { routes: [{ prefix: '/admin', to: 'orders' }, { prefix: '/', to: 'orders', filters: { ipList: false } }], filters: [{ ipList: { deny: ['0.0.0.0/0', '::/0'] } }] },
    });
    try {
      seen.length = 0;
      expect((await guarded.fetch('/admin/users')).status).toBe(403);
      for (const path of ['/ADMIN/users', '/Admin', '/%41dmin']) {
        const over1 = await guarded.fetch(path);
        expect(over1.status, path).toBe(400);
        expect(((await over1.json()) as { reason: string }).reason).toContain('case');
        const session = http2.connect(guarded.url, { ca: readFileSync(guarded.certificate.root) });
        session.on('error', () => undefined);
        try {
          expect((await h2Request(session, { ':path': path })).status, `HTTP/2 ${path}`).toBe(400);
        } finally {
          session.close();
        }
      }
      expect(seen).toEqual([]);
      expect((await guarded.fetch('/Orders')).status).toBe(200);
    } finally {
      await guarded.stop();
    }
  });
});

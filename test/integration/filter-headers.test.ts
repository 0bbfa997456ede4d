import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { makeMesh, type Mesh } from '../helpers/sidecar.js';

// headers at the edge: a real `meshward sidecar` ingress (a TLS listener, so the preset includes HSTS) in front of a
// mesh service: what the app gets, and what the client gets back.

describe('headers through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-headers-');
  let app: http.Server;
  let mesh: Mesh;
  let edge: Edge;

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', server: 'gunicorn/22', 'x-powered-by': 'Flask' });
      res.end(JSON.stringify(req.rawHeaders));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    mesh = await makeMesh(dir);
    edge = await startEdge(mesh, {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      ingress: {
        routes: [{ prefix: '/', to: 'orders' }],
        filters: [
          {
            headers: {
              request: { remove: ['cookie'], set: { 'x-team': 'payments' }, append: { via: 'meshward-edge' } },
              response: { set: { 'cache-control': 'no-store' } },
              securityHeaders: true,
            },
          },
        ],
      },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    cleanup();
  });

  it('changes what the app gets and what the client gets back', async () => {
    const res = await edge.fetch('/', { headers: { cookie: 'session=secret', 'x-team': 'spoofed', via: '1.1 client' } });
    const received = (await res.json()) as string[];
    const pairs = received.flatMap((v, i) => (i % 2 === 0 ? [`${v.toLowerCase()}: ${received[i + 1]}`] : []));
    expect(pairs).toEqual(expect.arrayContaining(['x-team: payments', 'via: 1.1 client', 'via: meshward-edge']));
    expect(pairs.filter((p) => p.startsWith('cookie') || p.includes('spoofed'))).toEqual([]);
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('removes and replaces a request header in every spelling (x_user for x-user), where underscores reach the app', async () => {
    const allowing = await startEdge(mesh, {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      name: 'allow-underscores',
      ingress: {
        routes: [{ prefix: '/', to: 'orders' }],
        headersWithUnderscores: 'allow',
        filters: [{ headers: { request: { remove: ['x-user'], set: { 'x-team': 'payments' } } } }],
      },
      ordersInbound: { headersWithUnderscores: 'allow' },
    });
    try {
      const res = await allowing.fetch('/', { headers: { x_user: 'admin', X_Team: 'spoofed', 'x-kept_one': 'yes' } });
      const received = (await res.json()) as string[];
      const pairs = received.flatMap((v, i) => (i % 2 === 0 ? [`${v.toLowerCase()}: ${received[i + 1]}`] : []));
      expect(pairs.filter((p) => p.startsWith('x_') || p.startsWith('x-user') || p.includes('spoofed'))).toEqual([]);
      expect(pairs).toEqual(expect.arrayContaining(['x-team: payments', 'x-kept_one: yes']));
    } finally {
      await allowing.stop();
    }
  });
});

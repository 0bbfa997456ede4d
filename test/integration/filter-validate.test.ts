import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { makeMesh } from '../helpers/sidecar.js';

// validate at the edge: a real `meshward sidecar` ingress in front of a mesh service, with curl as the client over
// TLS, HTTP/1.1 and HTTP/2: what the document allows reaches the app byte for byte; everything else is answered at the
// edge.

const FIXTURES = resolve(import.meta.dirname, '../fixtures/openapi');

describe('validate through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-validate-sockets-');
  const received: Array<{ method: string; url: string; body: string }> = [];
  let app: http.Server;
  let edge: Edge;

  beforeAll(async () => {
    copyFileSync(join(FIXTURES, 'orders-3.0.yaml'), join(dir, 'orders.yaml'));
    app = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString() });
        res.end('ok');
      });
    });
    await new Promise<void>((done) => app.listen(0, '127.0.0.1', done));
    edge = await startEdge(await makeMesh(dir), {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      ingress: { routes: [{ prefix: '/', to: 'orders' }], filters: [{ validate: { openapi: 'orders.yaml', maxBodyBytes: 1024 } }] },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((done) => app.close(() => done()));
    cleanup();
  });

  async function curl(...args: string[]): Promise<{ status: number; headers: string; body: string }> {
    const { stdout } = await promisify(execFile)('curl', ['-s', '-i', '--cacert', edge.certificate.root, ...args]);
    const [head, ...rest] = stdout.split('\r\n\r\n');
    return { status: Number(/^HTTP\/\S+ (\d{3})/.exec(head!)?.[1]), headers: head!, body: rest.join('\r\n\r\n') };
  }

  it('passes a request the document allows, body intact, over HTTP/1.1 and HTTP/2', async () => {
    received.length = 0;
    const body = '{"item":"widget","quantity":2,"note":null}';
    for (const version of ['--http1.1', '--http2']) {
      const res = await curl(version, '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', body, `${edge.url}/orders`);
      expect(res.status, version).toBe(200);
    }
    expect(received).toEqual([
      { method: 'POST', url: '/orders', body },
      { method: 'POST', url: '/orders', body },
    ]);
  });

  it('answers 404, 405 with Allow, 415 and 400 with the problems at the edge; the app hears of none of them', async () => {
    received.length = 0;
    expect((await curl(`${edge.url}/admin`)).status).toBe(404);
    const wrong = await curl('-X', 'PUT', `${edge.url}/orders/1`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers).toMatch(/^allow: GET, DELETE, HEAD$/im);
    expect((await curl('-X', 'POST', '-H', 'content-type: application/xml', '--data-binary', '<order/>', `${edge.url}/orders`)).status).toBe(415);
    for (const version of ['--http1.1', '--http2']) {
      const injected = await curl(version, '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '{"item":"w","quantity":1,"isAdmin":true}', `${edge.url}/orders`);
      expect(injected.status, version).toBe(400);
      expect(JSON.parse(injected.body).errors).toEqual([{ in: 'body', pointer: '/isAdmin', message: 'is not allowed here (additionalProperties: false)' }]);
      // A member twice: JSON.parse keeps the valid last one, a first-wins parser in the app the -5.
      const twice = await curl(version, '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '{"item":"w","quantity":-5,"quantity":1}', `${edge.url}/orders`);
      expect(twice.status, version).toBe(400);
      expect(JSON.parse(twice.body).errors).toEqual([{ in: 'body', pointer: '/quantity', message: 'is a member name the object has more than once' }]);
    }
    expect((await curl('-H', 'x-tenant: acme', `${edge.url}/orders?limit=1000`)).status).toBe(400);
    expect(received).toEqual([]);
  });

  it('caps the body before parsing it: 413, chunked or not', async () => {
    received.length = 0;
    const big = JSON.stringify({ item: 'w', quantity: 1, note: 'x'.repeat(2000) });
    expect((await curl('-X', 'POST', '-H', 'content-type: application/json', '--data-binary', big, `${edge.url}/orders`)).status).toBe(413);
    expect((await curl('-X', 'POST', '-H', 'content-type: application/json', '-H', 'transfer-encoding: chunked', '--data-binary', big, `${edge.url}/orders`)).status).toBe(413);
    expect(received).toEqual([]);
  });
});

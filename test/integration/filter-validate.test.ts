import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { validate } from '../../src/filters/validate.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, serveChain, startApp, type Harness } from '../helpers/filter-harness.js';

// validate in front of a real app over real HTTP, with curl as the client: what the document allows reaches the app
// byte for byte; everything else is answered at the edge.

const FIXTURES = resolve(import.meta.dirname, '../fixtures/openapi');

describe('validate through real sockets', () => {
  const { dir, cleanup } = tempDir('meshward-validate-sockets-');
  const received: Array<{ method: string; url: string; body: string }> = [];
  let app: Harness;
  let edge: Harness;
  let filter: HttpFilter;

  beforeAll(async () => {
    copyFileSync(join(FIXTURES, 'orders-3.0.yaml'), join(dir, 'orders.yaml'));
    app = await startApp((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString() });
        res.end('ok');
      });
    });
    filter = await validate.create(validate.settings.parse({ openapi: 'orders.yaml', maxBodyBytes: 1024 }), filterEnv({ configDir: dir }));
    edge = await serveChain([filter], app.port);
  });
  afterAll(async () => {
    await edge.close();
    await app.close();
    await filter.close?.();
    cleanup();
  });

  async function curl(...args: string[]): Promise<{ status: number; headers: string; body: string }> {
    const { stdout } = await promisify(execFile)('curl', ['-s', '-i', ...args]);
    const [head, ...rest] = stdout.split('\r\n\r\n');
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1]), headers: head!, body: rest.join('\r\n\r\n') };
  }

  it('passes a request the document allows, body intact', async () => {
    received.length = 0;
    const body = '{"item":"widget","quantity":2,"note":null}';
    const res = await curl('-X', 'POST', '-H', 'content-type: application/json', '--data-binary', body, `${edge.url}/orders`);
    expect(res.status).toBe(200);
    expect(received).toEqual([{ method: 'POST', url: '/orders', body }]);
  });

  it('answers 404, 405 with Allow, 415 and 400 with the problems at the edge; the app hears of none of them', async () => {
    received.length = 0;
    expect((await curl(`${edge.url}/admin`)).status).toBe(404);
    const wrong = await curl('-X', 'PUT', `${edge.url}/orders/1`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers).toMatch(/^allow: GET, DELETE, HEAD$/im);
    expect((await curl('-X', 'POST', '-H', 'content-type: application/xml', '--data-binary', '<order/>', `${edge.url}/orders`)).status).toBe(415);
    const injected = await curl('-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '{"item":"w","quantity":1,"isAdmin":true}', `${edge.url}/orders`);
    expect(injected.status).toBe(400);
    expect(JSON.parse(injected.body).errors).toEqual([{ in: 'body', pointer: '/isAdmin', message: 'is not allowed here (additionalProperties: false)' }]);
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

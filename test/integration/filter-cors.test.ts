import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyHash } from '../../src/filters/api-key-store.js';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { makeMesh } from '../helpers/sidecar.js';

// cors at the edge: a real `meshward sidecar` ingress (TLS, its certificate from a CA made with openssl) in front of a
// mesh service, called by fetch() as a browser would and by a real browser. Headless Chromium (Debian's) loads a page
// from an allowed origin and one from another origin; each calls the edge with fetch(). The route takes GET and PUT
// only: the PUT's preflight (an OPTIONS) reaches it because its chain answers preflights.

const KEY = 'mw_cors-test-key-0123456789abcdefghijklmnopq';

/** A plain HTTP server on a free loopback port; its URL. */
async function serve(handler: http.RequestListener, servers: http.Server[]): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('cors through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-cors-');
  const seen: string[] = [];
  const servers: http.Server[] = [];
  let edge: Edge;
  let allowedPage: string;
  let otherPage: string;

  beforeAll(async () => {
    writeFileSync(join(dir, 'keys.yaml'), `keys:\n  - name: web\n    sha256: ${apiKeyHash(KEY)}\n`);
    const app = await serve((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      // The app's own CORS header must not decide anything: the filter's policy replaces it.
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'app-42', 'access-control-allow-origin': '*' });
      res.end('{"orders":[]}');
    }, servers);
    const page = () =>
      serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(pageCalling(edge.url));
      }, servers);
    allowedPage = await page();
    otherPage = await page();
    edge = await startEdge(await makeMesh(dir), {
      app,
      ingress: {
        routes: [{ prefix: '/orders', methods: ['GET', 'PUT'], to: 'orders' }],
        filters: [
          { cors: { allowOrigins: [allowedPage], allowMethods: ['GET', 'PUT'], allowHeaders: ['content-type', 'x-api-key'], exposeHeaders: ['x-request-id'], maxAge: 600 } },
          { apiKey: { keysFile: 'keys.yaml' } },
        ],
      },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    for (const server of servers) server.close();
    cleanup();
  });

  it('answers a preflight itself: the app never sees it', async () => {
    seen.length = 0;
    const res = await edge.fetch('/orders', {
      method: 'OPTIONS',
      headers: { origin: allowedPage, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type,x-api-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowedPage);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, PUT');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toContain('Origin');
    const refused = await edge.fetch('/orders', { method: 'OPTIONS', headers: { origin: otherPage, 'access-control-request-method': 'PUT' } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    // A preflight for a method the route does not take finds no route.
    expect((await edge.fetch('/orders', { method: 'OPTIONS', headers: { origin: allowedPage, 'access-control-request-method': 'DELETE' } })).status).toBe(404);
    expect(seen).toEqual([]);
  });

  it("puts the policy on answers, the app's and the local replies alike, and nothing for another origin", async () => {
    const ok = await edge.fetch('/orders', { headers: { origin: allowedPage, 'x-api-key': KEY } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowedPage);
    expect(ok.headers.get('access-control-expose-headers')).toBe('x-request-id');
    const denied = await edge.fetch('/orders', { headers: { origin: allowedPage } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(allowedPage);
    const other = await edge.fetch('/orders', { headers: { origin: otherPage, 'x-api-key': KEY } });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('vary')).toBe('Origin');
  });

  it("lets a page from the allowed origin fetch() through the edge in Chromium, and keeps another origin's page out", async () => {
    seen.length = 0;
    const [allowed, other] = await Promise.all([browse(allowedPage, dir, 'a'), browse(otherPage, dir, 'b')]);
    expect(allowed).toEqual({ status: 200, body: '{"orders":[]}', requestId: 'app-42', noKeyStatus: 401 });
    expect(other).toEqual({ error: 'TypeError: Failed to fetch', noKeyError: 'TypeError: Failed to fetch' });
    // The allowed page's PUT reached the app (its preflight did not); the other page's never left the browser.
    expect(seen).toEqual(['PUT /orders']);
  });
});

/** A page that calls the edge with a preflighted request (PUT, JSON, a custom header) and shows what it got. */
function pageCalling(edge: string): string {
  return `<!doctype html><html><body>pending<script>
(async () => {
  const out = {};
  const call = (headers) => fetch(${JSON.stringify(`${edge}/orders`)}, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
  try {
    const r = await call({ 'x-api-key': ${JSON.stringify(KEY)} });
    Object.assign(out, { status: r.status, body: await r.text(), requestId: r.headers.get('x-request-id') });
  } catch (e) { out.error = String(e); }
  try { out.noKeyStatus = (await call({})).status; } catch (e) { out.noKeyError = String(e); }
  document.body.textContent = JSON.stringify(out);
})();
</script></body></html>`;
}

/**
 * Loads a page in headless Chromium and returns what its script wrote into the body. The edge's certificate is from a
 * CA of the test's own, which this throw-away profile is told to accept.
 */
async function browse(url: string, dir: string, profile: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--ignore-certificate-errors', `--user-data-dir=${join(dir, `chromium-${profile}`)}`, '--virtual-time-budget=20000', '--dump-dom', url],
    { timeout: 60_000 },
  );
  const body = /<body>([\s\S]*?)<\/body>/.exec(stdout)?.[1]?.trim() ?? stdout;
  return JSON.parse(body.replace(/<script>[\s\S]*<\/script>/, '').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>'));
}

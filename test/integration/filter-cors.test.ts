import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKey } from '../../src/filters/api-key.js';
import { apiKeyHash } from '../../src/filters/api-key-store.js';
import { cors } from '../../src/filters/cors.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, serveChain, startApp, type Harness } from '../helpers/filter-harness.js';

// cors in front of a real app: preflights from curl-like clients (fetch) and from a real browser. Headless Chromium
// (Debian's) loads a page from an allowed origin and one from another origin; each calls the edge with fetch().

const KEY = 'mw_cors-test-key-0123456789abcdefghijklmnopq';

describe('cors through real sockets', () => {
  const { dir, cleanup } = tempDir('meshward-cors-');
  const seen: string[] = [];
  let app: Harness;
  let edge: Harness;
  let allowedPage: Harness;
  let otherPage: Harness;
  let filters: HttpFilter[];

  beforeAll(async () => {
    writeFileSync(join(dir, 'keys.yaml'), `keys:\n  - name: web\n    sha256: ${apiKeyHash(KEY)}\n`);
    app = await startApp((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      // The app's own CORS header must not decide anything: the filter's policy replaces it.
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'app-42', 'access-control-allow-origin': '*' });
      res.end('{"orders":[]}');
    });
    const page = () =>
      startApp((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(pageCalling(edge.url));
      });
    allowedPage = await page();
    otherPage = await page();
    const env = filterEnv({ configDir: dir });
    filters = [
      await cors.create(
        cors.settings.parse({
          allowOrigins: [allowedPage.url],
          allowMethods: ['GET', 'PUT'],
          allowHeaders: ['content-type', 'x-api-key'],
          exposeHeaders: ['x-request-id'],
          maxAge: 600,
        }),
        env,
      ),
      await apiKey.create(apiKey.settings.parse({ keysFile: 'keys.yaml' }), env),
    ];
    edge = await serveChain(filters, app.port);
  });
  afterAll(async () => {
    await Promise.all([edge, app, allowedPage, otherPage].map((s) => s.close()));
    for (const f of filters) await f.close?.();
    cleanup();
  });

  it('answers a preflight itself: the app never sees it', async () => {
    seen.length = 0;
    const res = await fetch(`${edge.url}/orders`, {
      method: 'OPTIONS',
      headers: { origin: allowedPage.url, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type,x-api-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowedPage.url);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, PUT');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toContain('Origin');
    const refused = await fetch(`${edge.url}/orders`, { method: 'OPTIONS', headers: { origin: otherPage.url, 'access-control-request-method': 'PUT' } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(seen).toEqual([]);
  });

  it('puts the policy on answers, the app\'s and the local replies alike, and nothing for another origin', async () => {
    const ok = await fetch(`${edge.url}/orders`, { headers: { origin: allowedPage.url, 'x-api-key': KEY } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowedPage.url);
    expect(ok.headers.get('access-control-expose-headers')).toBe('x-request-id');
    const denied = await fetch(`${edge.url}/orders`, { headers: { origin: allowedPage.url } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(allowedPage.url);
    const other = await fetch(`${edge.url}/orders`, { headers: { origin: otherPage.url, 'x-api-key': KEY } });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('vary')).toBe('Origin');
  });

  it('lets a page from the allowed origin fetch() through the edge in Chromium, and keeps another origin\'s page out', async () => {
    seen.length = 0;
    const [allowed, other] = await Promise.all([browse(allowedPage.url, dir, 'a'), browse(otherPage.url, dir, 'b')]);
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

/** Loads a page in headless Chromium and returns what its script wrote into the body. */
async function browse(url: string, dir: string, profile: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${join(dir, `chromium-${profile}`)}`, '--virtual-time-budget=20000', '--dump-dom', url],
    { timeout: 60_000 },
  );
  const body = /<body>([\s\S]*?)<\/body>/.exec(stdout)?.[1]?.trim() ?? stdout;
  return JSON.parse(body.replace(/<script>[\s\S]*<\/script>/, '').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>'));
}

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKey } from '../../src/filters/api-key.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { filterEnv, serveChain, startApp, type Harness, type TestFilterEnvironment } from '../helpers/filter-harness.js';

// The apiKey filter in front of a real app over real HTTP, with keys made by the real `meshward apikey create`.

describe('apiKey through real sockets', () => {
  const { dir, cleanup } = tempDir('meshward-apikey-sockets-');
  const keysFile = join(dir, 'keys.yaml');
  let app: Harness;
  let edge: Harness;
  let filter: HttpFilter;
  let env: TestFilterEnvironment;
  let billingKey: string;
  const seen: Array<{ url: string; headers: Record<string, unknown> }> = [];

  async function createKey(name: string): Promise<string> {
    const r = await runCli(['apikey', 'create', '--name', name, '--file', keysFile]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  }

  beforeAll(async () => {
    billingKey = await createKey('billing');
    app = await startApp((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    env = filterEnv({ configDir: dir });
    filter = await apiKey.create(apiKey.settings.parse({ keysFile: 'keys.yaml', queryParameter: 'api_key' }), env);
    // A filter after apiKey shows the app which principal the chain saw.
    const principal: HttpFilter = {
      name: 'principal-probe',
      onRequest: (ctx) => {
        ctx.setHeaders.push(['x-test-principal', ctx.request.principal ?? '(none)']);
        return undefined;
      },
    };
    edge = await serveChain([filter, principal], app.port);
  });
  afterAll(async () => {
    await edge.close();
    await app.close();
    await filter.close?.();
    cleanup();
  });

  it('lets a caller with a key through as apikey:NAME; the key reaches neither the app nor the log', async () => {
    seen.length = 0;
    const res = await fetch(`${edge.url}/orders?page=2`, { headers: { 'X-API-Key': billingKey } });
    expect(res.status).toBe(200);
    const query = await fetch(`${edge.url}/orders?api_key=${billingKey}&page=3`);
    expect(query.status).toBe(200);
    // A WSGI or CGI app reads x_api_key as x-api-key: that spelling must not carry the key past the filter either.
    const underscored = await fetch(`${edge.url}/orders?page=4`, { headers: { 'x-api-key': billingKey, 'x_api_key': billingKey } });
    expect(underscored.status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/orders?page=2', '/orders?page=3', '/orders?page=4']);
    for (const request of seen) {
      expect(request.headers['x-test-principal']).toBe('apikey:billing');
      expect(JSON.stringify(request)).not.toContain(billingKey);
    }
    expect(env.lines.join('\n')).not.toContain(billingKey);
  });

  it('answers 401 as JSON with a challenge when the key is missing or unknown; the app never hears of it', async () => {
    seen.length = 0;
    for (const headers of [{}, { 'x-api-key': `${billingKey}x` }]) {
      const res = await fetch(`${edge.url}/orders`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('www-authenticate')).toBe('ApiKey realm="meshward", header="x-api-key", query="api_key"');
      expect(await res.json()).toMatchObject({ error: 'unauthenticated' });
    }
    expect(seen).toEqual([]);
  });

  it('accepts a key created while it runs, once the file is reloaded', async () => {
    const reportsKey = await createKey('reports');
    await env.waitFor(/API keys reloaded/);
    seen.length = 0;
    const res = await fetch(`${edge.url}/reports`, { headers: { 'x-api-key': reportsKey } });
    expect(res.status).toBe(200);
    expect(seen[0]?.headers['x-test-principal']).toBe('apikey:reports');
  });
});

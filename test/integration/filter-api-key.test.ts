import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { eventually, waitFor } from '../helpers/eventually.js';
import { httpRequest, makeMesh, outputContaining, readJsonLines } from '../helpers/sidecar.js';

// apiKey at the edge: a real `meshward sidecar` ingress in front of a mesh service, with keys made by the real
// `meshward apikey create`. A custom filter after apiKey (the tag fixture) tells the app which principal the chain saw.
// An authz filter between them decides on the key's principal, as a policy's from.principals names it.

const EDGE_POLICY = `
defaultAction: deny
rules:
  - name: billing-does-anything
    action: allow
    from: { principals: ["apikey:billing"] }
  - name: any-key-reads-reports
    action: allow
    from: { principals: ["apikey:*"] }
    to: { methods: [GET], paths: ["/reports", "/reports/**"] }
`;

const TAG_MODULE = join(REPO_ROOT, 'test/fixtures/filters/tag-filter.mjs');

describe('apiKey through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-apikey-sockets-');
  const keysFile = join(dir, 'keys.yaml');
  const auditFile = join(dir, 'edge-audit.jsonl');
  let app: http.Server;
  let edge: Edge;
  let billingKey: string;
  const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];

  async function createKey(name: string): Promise<string> {
    const r = await runCli(['apikey', 'create', '--name', name, '--file', keysFile]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  }

  beforeAll(async () => {
    billingKey = await createKey('billing');
    writeFileSync(join(dir, 'ingress-policy.yaml'), EDGE_POLICY);
    app = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    edge = await startEdge(await makeMesh(dir), {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      ingress: {
        routes: [{ prefix: '/', to: 'orders' }],
        filters: [{ apiKey: { keysFile: 'keys.yaml', queryParameter: 'api_key' } }, { authz: { policy: 'ingress-policy.yaml' } }, { module: TAG_MODULE }],
      },
      outboundFilters: [{ apiKey: { keysFile: 'keys.yaml', queryParameter: 'api_key' } }],
      webExtra: { audit: { path: auditFile } },
      // Every request's record is logged at debug: the key must be in none of them.
      webEnv: { MESHWARD_LOG_LEVEL: 'debug' },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    cleanup();
  });

  it('lets a caller with a key through as apikey:NAME; the key reaches neither the app nor the log', async () => {
    seen.length = 0;
    expect((await edge.fetch('/orders?page=2', { headers: { 'X-API-Key': billingKey } })).status).toBe(200);
    expect((await edge.fetch(`/orders?api_key=${billingKey}&page=3`)).status).toBe(200);
    // A WSGI or CGI app reads x_api_key as x-api-key: that spelling must not carry the key past the filter either.
    expect((await edge.fetch('/orders?page=4', { headers: { 'x-api-key': billingKey, x_api_key: billingKey } })).status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/orders?page=2', '/orders?page=3', '/orders?page=4']);
    for (const request of seen) {
      expect(request.headers['x-tag-principal']).toBe('apikey:billing');
      expect(JSON.stringify(request)).not.toContain(billingKey);
    }
    await outputContaining(edge.web, '"path":"/orders?page=4"');
    expect(edge.web.output()).toContain('"principal":"apikey:billing"');
    expect(edge.web.output()).not.toContain(billingKey);
  });

  it('takes the key out of the path on the outbound listener too: the destination gets the path the filters left', async () => {
    seen.length = 0;
    const res = await httpRequest(edge.web.outbound!, `/orders?api_key=${billingKey}&page=5`, { headers: { host: 'orders' } });
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/orders?page=5']);
  });

  it('answers 401 as JSON with a challenge when the key is missing or unknown, audits it, and the app never hears of it', async () => {
    seen.length = 0;
    for (const headers of [{}, { 'x-api-key': `${billingKey}x` }]) {
      const res = await edge.fetch('/orders', { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('www-authenticate')).toBe('ApiKey realm="meshward", header="x-api-key", query="api_key"');
      expect(await res.json()).toMatchObject({ error: 'unauthenticated' });
    }
    expect(seen).toEqual([]);
    const refusals = () => readJsonLines(auditFile).filter((r) => r.direction === 'ingress' && (r.decision as { outcome?: string } | undefined)?.outcome === 'unauthenticated');
    expect(await eventually(() => refusals().length === 2, 10_000)).toBe(true);
    expect(refusals()[0]).toMatchObject({ type: 'authz', method: 'GET', path: '/orders', status: 401, decision: { outcome: 'unauthenticated', rule: 'apiKey' }, sourceIp: '127.0.0.1' });
    expect(readJsonLines(auditFile).map((r) => JSON.stringify(r)).join('\n')).not.toContain(billingKey);
  });

  it('accepts a key created while it runs, once the file is reloaded', async () => {
    const reportsKey = await createKey('reports');
    await outputContaining(edge.web, 'API keys reloaded');
    seen.length = 0;
    expect((await edge.fetch('/reports', { headers: { 'x-api-key': reportsKey } })).status).toBe(200);
    expect(seen[0]?.headers['x-tag-principal']).toBe('apikey:reports');
  });

  it('decides on the key\'s principal: policy rules name apikey:NAME and apikey:*', async () => {
    const readerKey = await createKey('reader');
    await waitFor('the new key to be loaded', async () => (await edge.fetch('/reports', { headers: { 'x-api-key': readerKey } })).status, (status) => status === 200);
    seen.length = 0;
    // apikey:* may read reports, nothing else; apikey:billing may do anything.
    expect((await edge.fetch('/reports/7', { headers: { 'x-api-key': readerKey } })).status).toBe(200);
    const denied = await edge.fetch('/orders', { method: 'POST', headers: { 'x-api-key': readerKey } });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: 'forbidden' });
    expect((await edge.fetch('/orders', { method: 'POST', headers: { 'x-api-key': billingKey } })).status).toBe(200);
    expect(seen.map((s) => `${s.headers['x-tag-principal']} ${s.url}`)).toEqual(['apikey:reader /reports/7', 'apikey:billing /orders']);
    const denials = () => readJsonLines(auditFile).filter((r) => r.direction === 'ingress' && r.status === 403);
    expect(await eventually(() => denials().length === 1, 10_000)).toBe(true);
    expect(denials()[0]).toMatchObject({ principal: 'apikey:reader', decision: { outcome: 'deny' } });
  });
});

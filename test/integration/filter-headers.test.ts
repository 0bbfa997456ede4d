import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers } from '../../src/filters/headers.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { filterEnv, serveChain, startApp, type Harness } from '../helpers/filter-harness.js';

// The headers filter in front of a real app over real HTTP: what the app gets, and what the client gets back.

describe('headers through real sockets', () => {
  let app: Harness;
  let edge: Harness;
  let filter: HttpFilter;

  beforeAll(async () => {
    app = await startApp((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', server: 'gunicorn/22', 'x-powered-by': 'Flask' });
      res.end(JSON.stringify(req.rawHeaders));
    });
    filter = await headers.create(
      headers.settings.parse({
        request: { remove: ['cookie'], set: { 'x-team': 'payments' }, append: { 'x-forwarded-proto': 'https' } },
        response: { set: { 'cache-control': 'no-store' } },
        securityHeaders: true,
      }),
      filterEnv({ tls: true }),
    );
    edge = await serveChain([filter], app.port);
  });
  afterAll(async () => {
    await edge.close();
    await app.close();
  });

  it('changes what the app gets and what the client gets back', async () => {
    const res = await fetch(`${edge.url}/`, { headers: { cookie: 'session=secret', 'x-team': 'spoofed', 'x-forwarded-proto': 'http' } });
    const received = (await res.json()) as string[];
    const pairs = received.flatMap((v, i) => (i % 2 === 0 ? [`${v.toLowerCase()}: ${received[i + 1]}`] : []));
    expect(pairs).toEqual(expect.arrayContaining(['x-team: payments', 'x-forwarded-proto: http', 'x-forwarded-proto: https']));
    expect(pairs.filter((p) => p.startsWith('cookie') || p.includes('spoofed'))).toEqual([]);
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

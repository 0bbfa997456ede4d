import { describe, expect, it } from 'vitest';
import { plainIssueMessage } from '../../src/config/issue-message.js';
import { cors } from '../../src/filters/cors.js';
import { applyCorsHeaders, corsPolicy, corsSettings, originAllowed, preflightReply } from '../../src/filters/cors-policy.js';
import type { FilterResponse, HttpFilter } from '../../src/filters/http-filter.js';
import type { LocalReply } from '../../src/filters/local-reply.js';
import { replyResponse } from '../../src/filters/chain.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

const policyOf = (settings: Record<string, unknown>) => corsPolicy(corsSettings.parse(settings));
const APP = 'https://app.example.com';

function refusal(settings: Record<string, unknown>): string {
  const result = corsSettings.safeParse(settings, { error: plainIssueMessage });
  expect(result.success).toBe(false);
  return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
}

describe('cors settings', () => {
  it('refuses "*" with credentials, saying why', () => {
    expect(refusal({ allowOrigins: [APP, '*'], allowCredentials: true })).toMatch(/^allowOrigins\.1: "\*" cannot be used with allowCredentials: true/);
  });

  it('refuses what is no origin: a path, a trailing slash, null, a default port spelled out, a wildcard over a public suffix', () => {
    for (const origin of [`${APP}/`, `${APP}/x`, 'null', 'app.example.com', 'https://app.example.com:443', 'https://*.com', 'https://*', 'https://a.*.com']) {
      expect(refusal({ allowOrigins: [origin] })).toContain('must be an origin');
    }
    expect(refusal({ allowOrigins: [] })).toContain('must have at least one entry');
    expect(refusal({ allowOrigins: [APP], maxAge: 100_000 })).toContain('maxAge');
    expect(refusal({ allowOrigins: [APP], allowHeaders: ['bad header'] })).toContain('must be a header name');
  });

  it('takes origins in any case, and has safe defaults', () => {
    const settings = corsSettings.parse({ allowOrigins: ['HTTPS://App.Example.COM'] });
    expect(settings).toEqual({ allowOrigins: [APP], allowMethods: ['GET', 'HEAD', 'POST'], allowHeaders: [], exposeHeaders: [], allowCredentials: false });
  });
});

describe('which origins are allowed', () => {
  const policy = policyOf({ allowOrigins: [APP, 'https://*.example.org', 'http://localhost:8080'] });

  it('matches exact origins and subdomains of a wildcard, at any depth', () => {
    for (const origin of [APP, 'https://a.example.org', 'https://a.b.example.org', 'http://localhost:8080']) expect(originAllowed(policy, origin), origin).toBe(true);
  });

  it('refuses the wildcard domain itself, look-alikes, another scheme or port, and spellings browsers never send', () => {
    for (const origin of [
      'https://example.org',
      'https://evilexample.org',
      'https://example.org.evil.com',
      'https://a.example.org.evil.com',
      'http://a.example.org',
      'https://a.example.org:8443',
      'http://localhost',
      'http://localhost:8081',
      'https://APP.example.com',
      `${APP}/`,
      `${APP}, https://evil.com`,
      'null',
      '',
    ]) {
      expect(originAllowed(policy, origin), origin).toBe(false);
    }
    expect(originAllowed(policy, undefined)).toBe(false);
  });

  it('"*" allows every origin browsers send, still not "null"', () => {
    const any = policyOf({ allowOrigins: ['*'] });
    expect(originAllowed(any, 'https://anything.test')).toBe(true);
    expect(originAllowed(any, 'null')).toBe(false);
  });
});

describe('preflights', () => {
  const policy = policyOf({
    allowOrigins: [APP],
    allowMethods: ['GET', 'PUT', 'DELETE'],
    allowHeaders: ['Content-Type', 'X-Trace'],
    allowCredentials: true,
    maxAge: 600,
  });
  const ask = (headers: Record<string, string>) => preflightReply(policy, { origin: APP, 'access-control-request-method': 'PUT', ...headers }, 'r1');

  it('answers an allowed one 204 with the policy', () => {
    const reply = ask({ 'access-control-request-headers': 'content-type, x-trace' });
    expect(reply).toEqual({
      status: 204,
      headers: {
        'access-control-allow-origin': APP,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET, PUT, DELETE',
        'access-control-allow-headers': 'content-type, x-trace',
        'access-control-max-age': '600',
        vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      },
      body: '',
    });
  });

  it('answers 403 without any CORS header for another origin, method or header', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ origin: 'https://evil.com' }, 'origin "https://evil.com" is not allowed'],
      [{ 'access-control-request-method': 'PATCH' }, 'method "PATCH" is not allowed'],
      [{ 'access-control-request-headers': 'content-type, x-secret' }, 'header "x-secret" is not allowed'],
    ];
    for (const [headers, reason] of cases) {
      const reply = ask(headers);
      expect(reply.status).toBe(403);
      expect(JSON.parse(reply.body).reason).toBe(`CORS preflight: ${reason}`);
      expect(Object.keys(reply.headers ?? {}).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('with allowHeaders "*" allows the headers asked for by naming them back', () => {
    const any = policyOf({ allowOrigins: [APP], allowHeaders: ['*'] });
    const reply = preflightReply(any, { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'X-One,x-two' }, 'r1');
    expect(reply.headers?.['access-control-allow-headers']).toBe('x-one, x-two');
  });
});

describe('CORS headers on answers', () => {
  const policy = policyOf({ allowOrigins: [APP], exposeHeaders: ['X-Request-Id'], allowCredentials: true });

  it('adds them for an allowed origin, merging Vary', () => {
    const headers: FilterResponse['headers'] = { vary: 'Accept-Encoding' };
    applyCorsHeaders(policy, APP, headers);
    expect(headers).toEqual({
      vary: 'Accept-Encoding, Origin',
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id',
    });
  });

  it('adds none for another origin, and takes away those the app set itself', () => {
    const headers: FilterResponse['headers'] = { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true' };
    applyCorsHeaders(policy, 'https://evil.com', headers);
    expect(headers).toEqual({ vary: 'Origin' });
  });

  it('says "*" without Vary when the policy is "*" for everyone', () => {
    const headers: FilterResponse['headers'] = {};
    applyCorsHeaders(policyOf({ allowOrigins: ['*'] }), 'https://a.test', headers);
    expect(headers).toEqual({ 'access-control-allow-origin': '*' });
  });
});

describe('cors filter', () => {
  const make = () => cors.create(cors.settings.parse({ allowOrigins: [APP], allowMethods: ['GET', 'PUT'] }), filterEnv()) as HttpFilter;

  it('answers a preflight itself and leaves its own answer alone on the way back', () => {
    const filter = make();
    const ctx = hopContext({ method: 'OPTIONS', headers: { Origin: APP, 'Access-Control-Request-Method': 'PUT' } });
    const reply = filter.onRequest!(ctx) as LocalReply;
    expect(reply.status).toBe(204);
    const response = replyResponse(reply);
    const before = structuredClone(response.headers);
    filter.onResponse!(ctx, response);
    expect(response.headers).toEqual(before);
  });

  it('lets an OPTIONS that is no preflight go on to the app', () => {
    const filter = make();
    expect(filter.onRequest!(hopContext({ method: 'OPTIONS', headers: { Origin: APP } }))).toBeUndefined();
    expect(filter.onRequest!(hopContext({ method: 'OPTIONS' }))).toBeUndefined();
  });

  it('puts the headers on a local reply of a later filter, so that a page can read a 401', () => {
    const filter = make();
    const ctx = hopContext({ method: 'PUT', headers: { Origin: APP } });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    const response = replyResponse({ status: 401, body: '{"error":"unauthenticated"}' });
    filter.onResponse!(ctx, response);
    expect(response.headers['access-control-allow-origin']).toBe(APP);
  });
});

import { describe, expect, it } from 'vitest';
import { plainIssueMessage } from '../../src/config/issue-message.js';
import { headers } from '../../src/filters/headers.js';
import type { FilterResponse, HttpFilter } from '../../src/filters/http-filter.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

function make(settings: Record<string, unknown>, tls = false): HttpFilter {
  return headers.create(headers.settings.parse(settings), filterEnv({ tls })) as HttpFilter;
}

function refusal(settings: Record<string, unknown>): string {
  const result = headers.settings.safeParse(settings, { error: plainIssueMessage });
  expect(result.success, JSON.stringify(settings)).toBe(false);
  return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
}

describe('headers settings', () => {
  it("refuses to write meshward's identity headers in any spelling, on either side, by any edit", () => {
    const spellings = ['x-forwarded-client-cert', 'X-Forwarded-Client-Cert', 'x_forwarded_client_cert', 'X-MESHWARD-PRINCIPAL', 'x_meshward-principal'];
    for (const name of spellings) {
      for (const side of ['request', 'response']) {
        expect(refusal({ [side]: { set: { [name]: 'spiffe://td/ns/x/sa/admin' } } })).toMatch(/cannot be changed: it is meshward's identity header/);
        expect(refusal({ [side]: { append: { [name]: 'x' } } })).toMatch(/identity header/);
        expect(refusal({ [side]: { remove: [name] } })).toMatch(/identity header/);
      }
    }
  });

  it('refuses framing headers, Host on requests, bad names and values that could split a header', () => {
    expect(refusal({ request: { set: { 'Content-Length': '0' } } })).toMatch(/"content-length" cannot be changed: it frames the message/);
    expect(refusal({ response: { remove: ['transfer-encoding'] } })).toMatch(/frames the message/);
    expect(refusal({ request: { set: { host: 'admin.internal' } } })).toMatch(/"host" cannot be changed: the host is what routing and the policy matched/);
    expect(refusal({ request: { set: { 'bad name': 'x' } } })).toMatch(/must be a header name/);
    expect(refusal({ response: { set: { 'x-a': 'one\r\nset-cookie: evil=1' } } })).toMatch(/must not contain CR, LF or NUL/);
    expect(refusal({ requests: {} })).toMatch(/did you mean "request"/);
  });

  it('allows Host on responses and ordinary headers anywhere', () => {
    expect(headers.settings.parse({ request: { set: { 'X-Team': 'a' } }, response: { append: { Link: '<x>' } } })).toEqual({
      request: { set: { 'x-team': 'a' }, append: {}, remove: [] },
      response: { set: {}, append: { link: '<x>' }, remove: [] },
      securityHeaders: false,
    });
  });
});

describe('headers filter, request side', () => {
  it('removes, then sets, then appends, for the app and for the filters after it', () => {
    const filter = make({ request: { remove: ['Cookie'], set: { 'x-team': 'payments' }, append: { 'x-tags': 'edge' } } });
    const ctx = hopContext({ headers: [['Cookie', 'a=1'], ['X-Team', 'spoofed'], ['X-Tags', 'one'], ['X-Tags', 'two']] });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    expect(ctx.removeHeaders).toEqual(expect.arrayContaining(['cookie', 'x-team', 'x-tags']));
    expect(ctx.setHeaders).toEqual([
      ['x-team', 'payments'],
      ['x-tags', 'one'],
      ['x-tags', 'two'],
      ['x-tags', 'edge'],
    ]);
    expect(ctx.request.headers).toEqual({ 'x-team': 'payments', 'x-tags': 'one, two, edge' });
  });

  it('appends to what an earlier filter set, not to what the client sent', () => {
    const filter = make({ request: { append: { 'x-via': 'edge' } } });
    const ctx = hopContext({ headers: { 'x-via': 'client' } });
    ctx.setHeaders.push(['x-via', 'auth']);
    ctx.removeHeaders.push('x-via');
    filter.onRequest!(ctx);
    expect(ctx.setHeaders).toEqual([
      ['x-via', 'auth'],
      ['x-via', 'edge'],
    ]);
  });
});

describe('headers filter, response side', () => {
  const answer = (h: FilterResponse['headers']): FilterResponse => ({ status: 200, headers: h });

  it('applies the security preset: HSTS only on TLS, nosniff, referrer-policy; server and x-powered-by gone', () => {
    const plain = answer({ server: 'nginx/1.2', 'x-powered-by': 'Express', 'content-type': 'text/html' });
    make({ securityHeaders: true }).onResponse!(hopContext(), plain);
    expect(plain.headers).toEqual({ 'content-type': 'text/html', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    const tls = answer({});
    make({ securityHeaders: true }, true).onResponse!(hopContext(), tls);
    expect(tls.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
  });

  it("keeps the app's own security headers, and lets explicit edits override the preset", () => {
    const filter = make({ securityHeaders: true, response: { set: { 'referrer-policy': 'same-origin' }, append: { 'set-cookie': 'edge=1' }, remove: ['x-debug'] } }, true);
    const response = answer({ 'strict-transport-security': 'max-age=63072000; preload', 'set-cookie': 'app=1', 'x-debug': 'on' });
    filter.onResponse!(hopContext(), response);
    expect(response.headers).toEqual({
      'strict-transport-security': 'max-age=63072000; preload',
      'set-cookie': ['app=1', 'edge=1'],
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
    });
  });

  it('does nothing on the way back without response edits or the preset', () => {
    const response = answer({ server: 'nginx' });
    make({ request: { set: { 'x-a': 'b' } } }).onResponse!(hopContext(), response);
    expect(response.headers).toEqual({ server: 'nginx' });
  });
});

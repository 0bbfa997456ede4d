import { describe, expect, it } from 'vitest';
import { toAuthzRequest, type CheckRequestMessage } from '../../src/authz/ext-authz/check-request.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const newId = () => 'generated-id';

function envoyRequest(http: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): CheckRequestMessage {
  return {
    attributes: {
      source: { principal: WEB, address: { socketAddress: { address: '10.0.0.7', portValue: 40000 } } },
      destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 8080 } } },
      request: {
        http: {
          id: 'req-1',
          method: 'GET',
          path: '/api/orders/1?x=1',
          host: 'orders',
          headers: { ':authority': 'orders', ':method': 'GET', ':path': '/api/orders/1?x=1', 'x-tenant': 'a' },
          ...http,
        },
      },
      contextExtensions: { cluster: 'orders' },
      ...extra,
    },
  } as CheckRequestMessage;
}

describe('CheckRequest → AuthzRequest', () => {
  it('maps what Envoy sends', () => {
    const mapped = toAuthzRequest(envoyRequest(), newId);
    expect(mapped).toEqual({
      ok: true,
      requestId: 'req-1',
      request: {
        principal: WEB,
        sourceIp: '10.0.0.7',
        destinationPort: 8080,
        method: 'GET',
        host: 'orders',
        path: '/api/orders/1?x=1',
        headers: { ':authority': 'orders', ':method': 'GET', ':path': '/api/orders/1?x=1', 'x-tenant': 'a' },
        requestId: 'req-1',
        contextExtensions: { cluster: 'orders' },
      },
    });
  });

  it('generates a request id when Envoy sent none', () => {
    const mapped = toAuthzRequest(envoyRequest({ id: '' }), newId);
    expect(mapped.requestId).toBe('generated-id');
    expect(mapped.ok && mapped.request.requestId).toBe('generated-id');
  });

  it('takes the request id from x-request-id (what the sidecars and the app see) before request.http.id', () => {
    const mapped = toAuthzRequest(envoyRequest({ headers: { ':path': '/', 'x-request-id': 'from-header' } }), newId);
    expect(mapped.requestId).toBe('from-header');
    expect(mapped.ok && mapped.request.requestId).toBe('from-header');
    const malformed = toAuthzRequest({ attributes: { request: { http: { id: 'req-9', headers: { 'x-request-id': 'from-header' } } } } }, newId);
    expect(malformed).toMatchObject({ ok: false, requestId: 'from-header' });
  });

  it('replaces a request id that could be a credential, from the header or from request.http.id', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    expect(toAuthzRequest(envoyRequest({ headers: { ':path': '/', 'x-request-id': jwt } }), newId).requestId).toBe('generated-id');
    expect(toAuthzRequest(envoyRequest({ id: jwt }), newId).requestId).toBe('generated-id');
    expect(toAuthzRequest({ attributes: { request: { http: { id: jwt } } } }, newId)).toMatchObject({ ok: false, requestId: 'generated-id' });
  });

  it('treats a principal that is not a SPIFFE ID (a certificate subject) as no identity', () => {
    const message = envoyRequest();
    message.attributes!.source!.principal = 'CN=web,O=example';
    const mapped = toAuthzRequest(message, newId);
    expect(mapped.ok && mapped.request.principal).toBeUndefined();
  });

  it('leaves out what was not sent', () => {
    const mapped = toAuthzRequest({ attributes: { request: { http: { method: 'GET', path: '/' } } } }, newId);
    expect(mapped).toEqual({
      ok: true,
      requestId: 'generated-id',
      request: { method: 'GET', host: '', path: '/', headers: {}, requestId: 'generated-id' },
    });
  });

  it('takes the host from :authority when request.http.host is empty', () => {
    const mapped = toAuthzRequest(envoyRequest({ host: '' }), newId);
    expect(mapped.ok && mapped.request.host).toBe('orders');
  });

  it('appends a separately sent query to the path', () => {
    const mapped = toAuthzRequest(envoyRequest({ path: '/search', query: 'q=1' }), newId);
    expect(mapped.ok && mapped.request.path).toBe('/search?q=1');
  });

  it('lower-cases header names (Envoy sends them lower-case; another client might not)', () => {
    const mapped = toAuthzRequest(envoyRequest({ headers: { 'X-Tenant': 'a', constructor: 'c' } }), newId);
    expect(mapped.ok && { ...mapped.request.headers }).toEqual({ 'x-tenant': 'a', constructor: 'c' });
  });

  it('reads header_map (value or raw_value) when a newer Envoy sends it instead of headers', () => {
    const mapped = toAuthzRequest(
      envoyRequest({
        headers: {},
        headerMap: {
          headers: [
            { key: ':authority', value: 'orders' },
            { key: 'X-Tenant', rawValue: Buffer.from('b') },
            { key: 'accept', value: 'a/b' },
            { key: 'accept', value: 'c/d' },
          ],
        },
      }),
      newId,
    );
    expect(mapped.ok && { ...mapped.request.headers }).toEqual({ ':authority': 'orders', 'x-tenant': 'b', accept: 'a/b,c/d' });
  });

  it.each([
    ['no attributes', {}, 'CheckRequest has no attributes'],
    ['no request.http', { attributes: { request: {} } }, 'CheckRequest has no attributes.request.http'],
    ['no method', { attributes: { request: { http: { path: '/' } } } }, 'attributes.request.http.method is empty'],
    ['no path', { attributes: { request: { http: { method: 'GET' } } } }, 'attributes.request.http.path is empty'],
  ])('refuses a request with %s', (_what, message, reason) => {
    expect(toAuthzRequest(message as CheckRequestMessage, newId)).toEqual({ ok: false, reason, requestId: 'generated-id' });
  });

  it('keeps the request id of a malformed request that had one', () => {
    const mapped = toAuthzRequest({ attributes: { request: { http: { id: 'req-9', method: 'GET' } } } }, newId);
    expect(mapped).toMatchObject({ ok: false, requestId: 'req-9' });
  });
});

// The ext_authz client's pure mappings, both ways: AuthzRequest → CheckRequest (checked against the server's own
// reader, through real protobuf bytes) and CheckResponse → RemoteVerdict (fed the server's own answers).
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { AuthzRequest } from '../../src/authz/types.js';
import { buildCheckRequest } from '../../src/authz/ext-authz/check-request-builder.js';
import { toAuthzRequest, type CheckRequestMessage } from '../../src/authz/ext-authz/check-request.js';
import { allowResponse, badRequestResponse, buildCheckResponse } from '../../src/authz/ext-authz/check-response.js';
import { loadClientCheckTypes } from '../../src/authz/ext-authz/client.js';
import { loadCheckTypes } from '../../src/authz/ext-authz/protos.js';
import { toRemoteVerdict, type ReceivedCheckResponse } from '../../src/authz/ext-authz/remote-verdict.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const clientTypes = loadClientCheckTypes();
const serverTypes = loadCheckTypes();

const fullRequest: AuthzRequest = {
  principal: WEB,
  sourceIp: '10.0.0.7',
  destinationPort: 8080,
  method: 'GET',
  host: 'orders:8080',
  path: '/api/orders/1?x=1&y=%2F',
  headers: { 'x-tenant': 'a', accept: 'application/json' },
  requestId: 'req-1',
  contextExtensions: { cluster: 'orders' },
};

/** What the server reads from the bytes the client sends. */
function throughTheWire(request: AuthzRequest, extras = {}) {
  const bytes = clientTypes.CheckRequest.encode(buildCheckRequest(request, extras)).finish();
  return toAuthzRequest(serverTypes.CheckRequest.decode(bytes) as CheckRequestMessage, () => 'generated-id');
}

/** A CheckResponse as the client receives it: encoded by the server's types, decoded by the client's. */
function received(message: object): ReceivedCheckResponse {
  return clientTypes.CheckResponse.decode(serverTypes.CheckResponse.encode(message).finish()) as ReceivedCheckResponse;
}

describe('AuthzRequest → CheckRequest', () => {
  it('round-trips through the server reader unchanged', () => {
    expect(throughTheWire(fullRequest)).toEqual({ ok: true, requestId: 'req-1', request: fullRequest });
  });

  it('round-trips a request that carries only what every request has', () => {
    const minimal: AuthzRequest = { method: 'POST', host: 'orders', path: '/', headers: {} };
    expect(throughTheWire(minimal)).toEqual({ ok: true, requestId: 'generated-id', request: { ...minimal, requestId: 'generated-id' } });
  });

  it('puts the query in path and leaves query empty, as Envoy does', () => {
    const http = buildCheckRequest(fullRequest).attributes.request.http;
    expect(http.path).toBe('/api/orders/1?x=1&y=%2F');
    expect(http).not.toHaveProperty('query');
  });

  it('sends scheme, protocol and the peer certificate URL-encoded where Envoy puts them', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const bytes = clientTypes.CheckRequest.encode(
      buildCheckRequest(fullRequest, { scheme: 'https', protocol: 'HTTP/2', peerCertificate: pem }),
    ).finish();
    const decoded = clientTypes.CheckRequest.toObject(clientTypes.CheckRequest.decode(bytes)) as {
      attributes: { source: { certificate: string }; request: { http: { scheme: string; protocol: string } } };
    };
    expect(decoded.attributes.request.http).toMatchObject({ scheme: 'https', protocol: 'HTTP/2' });
    expect(decoded.attributes.source.certificate).toBe(encodeURIComponent(pem));
    expect(decodeURIComponent(decoded.attributes.source.certificate)).toBe(pem);
  });

  it('passes an already URL-encoded certificate on as it is', () => {
    const encoded = encodeURIComponent('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(buildCheckRequest(fullRequest, { peerCertificate: encoded }).attributes.source?.certificate).toBe(encoded);
  });

  it('leaves out what it does not know instead of sending empty values', () => {
    expect(buildCheckRequest({ method: 'GET', host: 'h', path: '/', headers: {}, contextExtensions: {} })).toEqual({
      attributes: { request: { http: { method: 'GET', host: 'h', path: '/', headers: {} } } },
    });
  });
});

describe('CheckResponse → RemoteVerdict', () => {
  const context = { requestId: 'req-1', explainDenials: true };

  it('maps the server allow: the principal header set', () => {
    expect(toRemoteVerdict(received(allowResponse(WEB)))).toEqual({
      kind: 'allow',
      setHeaders: [['x-meshward-principal', WEB]],
      removeHeaders: [],
    });
  });

  it('maps the server allow without a principal: a forged principal header removed', () => {
    expect(toRemoteVerdict(received(allowResponse(undefined)))).toEqual({ kind: 'allow', setHeaders: [], removeHeaders: ['x-meshward-principal'] });
  });

  it('maps an OK answer without ok_response to an allow that changes nothing', () => {
    expect(toRemoteVerdict(received({ status: { code: 0 } }))).toEqual({ kind: 'allow', setHeaders: [], removeHeaders: [] });
  });

  it('maps a policy denial: 403, its headers and body', () => {
    const verdict = toRemoteVerdict(received(buildCheckResponse({ kind: 'deny', rule: 'block-admin', reason: 'r' }, context)));
    expect(verdict).toEqual({
      kind: 'deny',
      httpStatus: 403,
      grpcCode: status.PERMISSION_DENIED,
      headers: [
        ['content-type', 'application/json'],
        ['x-meshward-denied-by', 'block-admin'],
      ],
      body: JSON.stringify({ error: 'forbidden', rule: 'block-admin', requestId: 'req-1' }),
    });
  });

  it('maps a rate limit to 429 with retry-after', () => {
    const verdict = toRemoteVerdict(received(buildCheckResponse({ kind: 'rate_limited', limit: 'l', retryAfterSeconds: 2.5 }, context)));
    expect(verdict).toMatchObject({ kind: 'deny', httpStatus: 429, grpcCode: status.RESOURCE_EXHAUSTED });
    expect(verdict.kind === 'deny' && verdict.headers).toContainEqual(['retry-after', '3']);
  });

  it('maps an unauthenticated request to 401 with the challenge, and a bad one to 400', () => {
    const unauthenticated = toRemoteVerdict(received(buildCheckResponse({ kind: 'unauthenticated', reason: 'r', challenge: 'Bearer' }, context)));
    expect(unauthenticated).toMatchObject({ kind: 'deny', httpStatus: 401, grpcCode: status.UNAUTHENTICATED });
    expect(unauthenticated.kind === 'deny' && unauthenticated.headers).toContainEqual(['www-authenticate', 'Bearer']);
    expect(toRemoteVerdict(received(badRequestResponse('bad path', 'req-1')))).toMatchObject({ kind: 'deny', httpStatus: 400, grpcCode: status.INVALID_ARGUMENT });
  });

  it('maps a denial with no HTTP status, or one no response can have, to 403', () => {
    for (const deniedResponse of [undefined, { status: { code: 0 } }, { status: { code: 100 } }, { body: 'no' }]) {
      expect(toRemoteVerdict(received({ status: { code: status.PERMISSION_DENIED }, deniedResponse }))).toMatchObject({
        kind: 'deny',
        httpStatus: 403,
        grpcCode: status.PERMISSION_DENIED,
      });
    }
  });

  it('keeps a denial a denial when one of its headers cannot be sent, dropping that header', () => {
    const verdict = toRemoteVerdict(
      received({
        status: { code: status.PERMISSION_DENIED },
        deniedResponse: { status: { code: 403 }, headers: [{ header: { key: 'bad name', value: 'x' } }, { header: { key: 'X-Ok', value: 'y' } }], body: 'b' },
      }),
    );
    expect(verdict).toEqual({ kind: 'deny', httpStatus: 403, grpcCode: status.PERMISSION_DENIED, headers: [['x-ok', 'y']], body: 'b' });
  });

  it('reads a header value sent as raw_value, as newer Envoy APIs do', () => {
    const verdict = toRemoteVerdict(received({ status: { code: 0 }, okResponse: { headers: [{ header: { key: 'x-a', rawValue: Buffer.from('v') } }] } }));
    expect(verdict).toEqual({ kind: 'allow', setHeaders: [['x-a', 'v']], removeHeaders: [] });
  });

  it.each([
    ['no status', {}, 'no status'],
    ['an OK code with a denied_response', { status: { code: 0 }, deniedResponse: { status: { code: 403 } } }, 'denied_response'],
    ['a header without a name', { status: { code: 0 }, okResponse: { headers: [{ header: { value: 'v' } }] } }, 'has no name'],
    ['a pseudo-header', { status: { code: 0 }, okResponse: { headers: [{ header: { key: ':authority', value: 'v' } }] } }, '":authority" is not a valid'],
    ['a value with a line break', { status: { code: 0 }, okResponse: { headers: [{ header: { key: 'x-a', value: 'v\r\nx-b: w' } }] } }, 'value of "x-a"'],
    ['a header to remove that is no header name', { status: { code: 0 }, okResponse: { headersToRemove: ['a b'] } }, 'headers_to_remove'],
  ])('answers an allow with %s with an error (the caller fails closed)', (_what, message, reason) => {
    const verdict = toRemoteVerdict(received(message));
    expect(verdict).toEqual({ kind: 'error', reason: expect.stringContaining(reason) });
  });
});

import { describe, expect, it } from 'vitest';
import { badRequestResponse, buildCheckResponse } from '../../src/authz/ext-authz/check-response.js';
import { decisionReply } from '../../src/filters/authz/decision-reply.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const explained = { requestId: 'req-1', explainDenials: true };
const unexplained = { requestId: 'req-1', explainDenials: false };
const overwrite = (key: string, value: string) => ({ header: { key, value }, appendAction: 2 });

describe('Decision → CheckResponse', () => {
  it('allows with x-meshward-principal set (overwriting any incoming copy) and never also removed', () => {
    const response = buildCheckResponse({ kind: 'allow', rule: 'r', principal: WEB }, explained);
    expect(response).toEqual({ status: { code: 0 }, okResponse: { headers: [overwrite('x-meshward-principal', WEB)] } });
  });

  it('allows a caller without identity with any incoming x-meshward-principal removed', () => {
    const response = buildCheckResponse({ kind: 'allow', rule: 'default' }, explained);
    expect(response).toEqual({ status: { code: 0 }, okResponse: { headersToRemove: ['x-meshward-principal'] } });
  });

  it('denies with 403, the rule in the body and x-meshward-denied-by', () => {
    const response = buildCheckResponse({ kind: 'deny', rule: 'block-admin', reason: 'r' }, explained);
    expect(response).toEqual({
      status: { code: 7, message: 'denied by rule block-admin' },
      deniedResponse: {
        status: { code: 403 },
        headers: [overwrite('content-type', 'application/json'), overwrite('x-meshward-denied-by', 'block-admin')],
        body: '{"error":"forbidden","rule":"block-admin","requestId":"req-1"}',
      },
    });
  });

  it('names the default when no rule matched', () => {
    const response = buildCheckResponse({ kind: 'deny', rule: 'default', reason: 'r' }, explained);
    expect(JSON.parse(response.deniedResponse!.body)).toEqual({ error: 'forbidden', rule: 'default', requestId: 'req-1' });
  });

  it('names no rule when explainDenials is false', () => {
    const response = buildCheckResponse({ kind: 'deny', rule: 'block-admin', reason: 'r' }, unexplained);
    expect(response.status).toEqual({ code: 7, message: 'denied by policy' });
    expect(response.deniedResponse!.body).toBe('{"error":"forbidden","requestId":"req-1"}');
    expect(response.deniedResponse!.headers).toContainEqual(overwrite('x-meshward-denied-by', 'policy'));
  });

  it('answers an unauthenticated caller with 401 and the challenge', () => {
    const response = buildCheckResponse({ kind: 'unauthenticated', reason: 'expired', challenge: 'Bearer error="invalid_token"' }, explained);
    expect(response.status.code).toBe(16);
    expect(response.deniedResponse).toEqual({
      status: { code: 401 },
      headers: [overwrite('content-type', 'application/json'), overwrite('www-authenticate', 'Bearer error="invalid_token"')],
      body: '{"error":"unauthenticated","requestId":"req-1"}',
    });
  });

  it('answers an invalid request with 400 and INVALID_ARGUMENT', () => {
    const response = buildCheckResponse({ kind: 'invalid', reason: 'the path contains an encoded slash (%2F)' }, explained);
    expect(response.status.code).toBe(3);
    expect(response.deniedResponse!.status).toEqual({ code: 400 });
    expect(JSON.parse(response.deniedResponse!.body)).toEqual({
      error: 'bad_request',
      reason: 'the path contains an encoded slash (%2F)',
      requestId: 'req-1',
    });
  });

  it('answers a rate-limited caller with 429 and retry-after in whole seconds', () => {
    const response = buildCheckResponse({ kind: 'rate_limited', limit: 'per-caller', retryAfterSeconds: 0.2 }, explained);
    expect(response.status.code).toBe(8);
    expect(response.deniedResponse!.status).toEqual({ code: 429 });
    expect(response.deniedResponse!.headers).toContainEqual(overwrite('retry-after', '1'));
    expect(JSON.parse(response.deniedResponse!.body)).toEqual({ error: 'rate_limited', limit: 'per-caller', requestId: 'req-1' });
    const unexplainedBody = buildCheckResponse({ kind: 'rate_limited', limit: 'per-caller', retryAfterSeconds: 3 }, unexplained).deniedResponse!.body;
    expect(JSON.parse(unexplainedBody)).toEqual({ error: 'rate_limited', requestId: 'req-1' });
  });

  it('answers a malformed CheckRequest like an invalid one', () => {
    expect(badRequestResponse('CheckRequest has no attributes', 'id-2')).toEqual(
      buildCheckResponse({ kind: 'invalid', reason: 'CheckRequest has no attributes' }, { requestId: 'id-2', explainDenials: true }),
    );
  });
});

describe('the decision as a reply', () => {
  it.each([
    { kind: 'deny', rule: 'block-admin', reason: 'r' },
    { kind: 'unauthenticated', reason: 'expired', challenge: 'Bearer realm="meshward"' },
    { kind: 'invalid', reason: 'the path contains an encoded slash (%2F)' },
    { kind: 'rate_limited', limit: 'per-caller', retryAfterSeconds: 2 },
  ] as const)('is what Envoy is told to answer for a $kind decision, and what the sidecar answers itself', (decision) => {
    for (const context of [explained, unexplained]) {
      const reply = decisionReply(decision, context)!;
      const denied = buildCheckResponse(decision, context).deniedResponse!;
      expect({ status: denied.status.code, body: denied.body, headers: denied.headers }).toEqual({
        status: reply.status,
        body: reply.body,
        headers: [overwrite('content-type', 'application/json'), ...Object.entries(reply.headers ?? {}).map(([k, v]) => overwrite(k, v))],
      });
    }
  });

  it('is no reply for an allow', () => {
    expect(decisionReply({ kind: 'allow', rule: 'r', principal: WEB }, explained)).toBeUndefined();
  });
});

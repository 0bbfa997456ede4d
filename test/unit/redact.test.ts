import { describe, expect, it } from 'vitest';
import { redactedPath, redactString, redactValue } from '../../src/telemetry/redact.js';

describe('redactString', () => {
  it.each([
    ['Bearer abc.def', 'Bearer [redacted]'],
    ['/x?token=abc&page=1', '/x?token=[redacted]&page=1'],
    ['/x?page=1&API_KEY=abc', '/x?page=1&API_KEY=[redacted]'],
    ['t=eyJhbGciOi.eyJzdWIiOi.sig_-x', 't=[redacted jwt]'],
    ['-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\nafter', '[redacted private key]\nafter'],
    // OAuth2 / OpenID Connect parameters, however spelt and wherever they stand.
    [
      '/token?client_secret=a&code=b&refresh_token=c&id_token=d&password=e&assertion=f&client_assertion=g&code_verifier=h&device_code=i&state=s',
      '/token?client_secret=[redacted]&code=[redacted]&refresh_token=[redacted]&id_token=[redacted]&password=[redacted]&assertion=[redacted]&client_assertion=[redacted]&code_verifier=[redacted]&device_code=[redacted]&state=s',
    ],
    ['/x?Client_Secret=a&CODE=b', '/x?Client_Secret=[redacted]&CODE=[redacted]'],
    ['/x?client%5Fsecret=a&%63ode=b&client-secret=c', '/x?client%5Fsecret=[redacted]&%63ode=[redacted]&client-secret=[redacted]'],
    ['/x;jsessionid=abc;v=1', '/x;jsessionid=[redacted];v=1'],
    ['/reset/password=hunter2', '/reset/password=[redacted]'],
    ['/cb#access_token=abc&token_type=bearer', '/cb#access_token=[redacted]&token_type=bearer'],
    ['/s3/o?X-Amz-Signature=abc/def+1&X-Amz-Security-Token=t', '/s3/o?X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]'],
    ['failed: client_secret=abc was refused', 'failed: client_secret=[redacted] was refused'],
    // A JWT under a secret name goes with the name; one with encoded dots, or a JWE of five parts, is still a JWT.
    ['/x?id_token=eyJhbGciOi.eyJzdWIiOi.sig', '/x?id_token=[redacted]'],
    ['/p/eyJhbGciOi%2EeyJzdWIiOi%2Esig/q', '/p/[redacted jwt]/q'],
    ['eyJhbGciOi.ZW5jcnlwdGVk.aXY.Y2lwaGVy.dGFn end', '[redacted jwt] end'],
  ])('redacts %j', (input, output) => expect(redactString(input)).toBe(output));

  it.each([
    'keyboard layout',
    '/api/orders?page=2',
    'spiffe://example.org/ns/default/sa/web',
    '-----BEGIN CERTIFICATE-----',
    '/token?grant_type=authorization_code&redirect_uri=https://app.example/cb&client_id=web',
    'dXNlcjpzZWtyaXQ=',
  ])('leaves %j alone', (input) => expect(redactString(input)).toBe(input));

  it('copies an object only when something in it changed', () => {
    const clean = { a: { b: ['x'] } };
    expect(redactValue(clean)).toBe(clean);
    const dirty = { a: { b: ['Bearer x'] }, c: 1 };
    expect(redactValue(dirty)).toEqual({ a: { b: ['Bearer [redacted]'] }, c: 1 });
    expect(dirty.a.b[0]).toBe('Bearer x');
  });
});

describe('redactedPath', () => {
  it('drops the query and redacts credentials in the path itself', () => {
    expect(redactedPath('/api/orders/7?page=2')).toBe('/api/orders/7');
    expect(redactedPath('/files/eyJhbGciOi.eyJzdWIiOi.sig/x?code=1')).toBe('/files/[redacted jwt]/x');
    expect(redactedPath('/a;access_token=abc?x=1')).toBe('/a;access_token=[redacted]');
  });
});

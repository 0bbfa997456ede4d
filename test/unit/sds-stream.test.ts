import { describe, expect, it } from 'vitest';
import type { IdentitySnapshot } from '../../src/identity/index.js';
import { IdentityFeed, identityVersion } from '../../src/identity-api/identity-feed.js';
import { SECRET_TYPE_URL } from '../../src/identity-api/sds-secrets.js';
import { SecretStream, type DiscoveryRequest } from '../../src/identity-api/sds-stream.js';

// The xDS state-of-the-world rules of one StreamSecrets stream, without a socket: what is answered, what is not.

const WEB = 'spiffe://example.org/ns/default/sa/web';

function identity(serial: string, bundlePem = 'BUNDLE'): IdentitySnapshot {
  const svid = { spiffeId: WEB, certChainPem: `CHAIN ${serial}`, keyPem: `KEY ${serial}`, serial, notBefore: new Date(0), notAfter: new Date(1) };
  return { svid, bundlePem };
}

function request(names: string[], answer?: { version: string; nonce: string; error?: string }): DiscoveryRequest {
  return {
    version_info: answer?.version ?? '',
    node: answer ? null : { id: 'envoy-1', cluster: 'web' },
    resource_names: names,
    type_url: SECRET_TYPE_URL,
    response_nonce: answer?.nonce ?? '',
    error_detail: answer?.error ? { code: 3, message: answer.error } : null,
  };
}

function stream(): SecretStream {
  let n = 0;
  return new SecretStream('example.org', () => `n${++n}`);
}

const names = (r: { resources: Array<{ name: string }> } | undefined) => r?.resources.map((s) => s.name);

describe('SDS stream (xDS state of the world)', () => {
  it('answers the first request with the names asked, once the identity is there', () => {
    const s = stream();
    expect(s.onRequest(request(['default', 'ROOTCA']))).toEqual({ kind: 'first' });
    const pushed = s.onIdentity(identity('1'), 'v1');
    expect(pushed).toMatchObject({ version_info: 'v1', type_url: SECRET_TYPE_URL, nonce: 'n1' });
    expect(pushed!.resources).toEqual([
      { '@type': SECRET_TYPE_URL, name: 'default', tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('CHAIN 1') }, private_key: { inline_bytes: Buffer.from('KEY 1') } } },
      { '@type': SECRET_TYPE_URL, name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: Buffer.from('BUNDLE') } } },
    ]);
  });

  it('sends nothing before the client asks', () => {
    const s = stream();
    expect(s.onIdentity(identity('1'), 'v1')).toBeUndefined();
    expect(s.onRequest(request(['default'])).response).toMatchObject({ version_info: 'v1', nonce: 'n1' });
  });

  it('an ACK and a NACK get nothing back; the next identity is pushed either way', () => {
    const s = stream();
    s.onIdentity(identity('1'), 'v1');
    s.onRequest(request(['default']));
    expect(s.onRequest(request(['default'], { version: 'v1', nonce: 'n1' }))).toEqual({ kind: 'ack' });
    expect(s.onIdentity(identity('2'), 'v2')).toMatchObject({ version_info: 'v2', nonce: 'n2' });
    expect(s.onRequest(request(['default'], { version: 'v1', nonce: 'n2', error: 'bad key' }))).toEqual({ kind: 'nack' });
    expect(s.onIdentity(identity('3'), 'v3')).toMatchObject({ version_info: 'v3', nonce: 'n3' });
  });

  it('a changed subscription is answered at once, ACK or NACK', () => {
    const s = stream();
    s.onIdentity(identity('1'), 'v1');
    s.onRequest(request(['default']));
    const ack = s.onRequest(request(['default', 'ROOTCA'], { version: 'v1', nonce: 'n1' }));
    expect(ack.kind).toBe('ack');
    expect(names(ack.response)).toEqual(['default', 'ROOTCA']);
    const nack = s.onRequest(request(['ROOTCA'], { version: '', nonce: 'n2', error: 'no' }));
    expect(nack.kind).toBe('nack');
    expect(names(nack.response)).toEqual(['ROOTCA']);
    // The same names in another order are the same subscription.
    expect(s.onRequest(request(['ROOTCA'], { version: 'v1', nonce: 'n3' })).response).toBeUndefined();
  });

  it('ignores a request answering an older response: its names do not count', () => {
    const s = stream();
    s.onIdentity(identity('1'), 'v1');
    s.onRequest(request(['default']));
    s.onIdentity(identity('2'), 'v2');
    expect(s.onRequest(request(['ROOTCA'], { version: 'v1', nonce: 'n1' }))).toEqual({ kind: 'stale' });
    expect(names(s.onIdentity(identity('3'), 'v3'))).toEqual(['default']);
  });

  it('names the SVID by its SPIFFE ID and the bundle by the trust domain; each once; unknown names left out; no name means both', () => {
    const s = stream();
    s.onIdentity(identity('1'), 'v1');
    expect(names(s.onRequest(request([WEB, 'spiffe://example.org', 'unknown', WEB, 'spiffe://other.org'])).response)).toEqual([WEB, 'spiffe://example.org']);
    expect(names(stream().onRequest(request([])).response)).toBeUndefined();
    const wildcard = stream();
    wildcard.onIdentity(identity('1'), 'v1');
    expect(names(wildcard.onRequest(request([])).response)).toEqual([WEB, 'spiffe://example.org']);
  });
});

describe('identity feed', () => {
  it('passes on changes only, with a version that names the certificates and bundle', () => {
    const feed = new IdentityFeed();
    const seen: string[] = [];
    feed.follow((s, version) => seen.push(`${s.svid.serial}@${version}`));
    feed.publish(identity('1'));
    feed.publish(identity('1'));
    feed.publish(identity('1', 'NEW BUNDLE'));
    feed.publish(identity('2', 'NEW BUNDLE'));
    expect(seen).toEqual([
      `1@${identityVersion(identity('1'))}`,
      `1@${identityVersion(identity('1', 'NEW BUNDLE'))}`,
      `2@${identityVersion(identity('2', 'NEW BUNDLE'))}`,
    ]);
    expect(new Set(seen.map((s) => s.split('@')[1])).size).toBe(3);
    // A late follower hears the current identity at once.
    const late: string[] = [];
    feed.follow((s) => late.push(s.svid.serial));
    expect(late).toEqual(['2']);
  });
});

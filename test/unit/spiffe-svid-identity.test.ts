import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { svidIdentity } from '../../src/spiffe/index.js';
import { uriSubjectAltNames } from '../../src/spiffe/san.js';
import { x509 } from '../../src/spiffe/x509.js';
import { toCryptoKeyPair } from '../../src/ca/keys.js';

/** A self-signed certificate with exactly these SANs and CA flag, made with @peculiar/x509 (no OpenSSL config quoting). */
async function certWith(names: x509.JsonGeneralName[], ca = false): Promise<Buffer> {
  const keys = await toCryptoKeyPair(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(ca, undefined, true), new x509.SubjectAlternativeNameExtension(names, false)],
  }, webcrypto as never);
  return Buffer.from(cert.rawData);
}

describe('uriSubjectAltNames', () => {
  it('reads URI entries, plain and as JSON string literals, and skips other kinds', () => {
    expect(uriSubjectAltNames('URI:spiffe://td/a, DNS:localhost, IP Address:127.0.0.1')).toEqual(['spiffe://td/a']);
    expect(uriSubjectAltNames('URI:"spiffe://td/a, URI:spiffe://td/b", DNS:x')).toEqual(['spiffe://td/a, URI:spiffe://td/b']);
    expect(uriSubjectAltNames('DNS:"a\\"b", URI:spiffe://td/c')).toEqual(['spiffe://td/c']);
    expect(uriSubjectAltNames('URI:"spiffe://td/\\u00e9"')).toEqual(['spiffe://td/é']);
    expect(uriSubjectAltNames(undefined)).toEqual([]);
  });

  it('refuses a string it cannot read, rather than guessing', () => {
    for (const bad of ['URI', 'URI:"open', 'URI:"a"b', 'URI:a,URI:b', 'URI:a"b', 'URI:"\\x"']) expect(uriSubjectAltNames(bad), bad).toBeUndefined();
  });
});

describe('svidIdentity (node:crypto parse)', () => {
  it('accepts a leaf with one SPIFFE URI SAN and names its trust domain', async () => {
    const der = await certWith([{ type: 'url', value: 'spiffe://example.org/ns/default/sa/web' }, { type: 'dns', value: 'localhost' }]);
    expect(svidIdentity(der, 'example.org')).toMatchObject({ ok: true, value: { uri: 'spiffe://example.org/ns/default/sa/web' } });
  });

  it('does not split a URI that holds ", URI:" into two identities (CVE-2021-44532 class)', async () => {
    const der = await certWith([{ type: 'url', value: 'spiffe://evil.org/x, URI:spiffe://example.org/ns/default/sa/admin' }]);
    const id = svidIdentity(der, 'example.org');
    expect(id.ok).toBe(false);
  });

  it('refuses a CA certificate, two URI SANs, none, and a certificate that does not parse', async () => {
    expect(svidIdentity(await certWith([{ type: 'url', value: 'spiffe://example.org/a' }], true))).toMatchObject({ ok: false, error: expect.stringContaining('CA certificate') });
    expect(svidIdentity(await certWith([{ type: 'url', value: 'spiffe://example.org/a' }, { type: 'url', value: 'spiffe://example.org/b' }]))).toMatchObject({ ok: false, error: expect.stringContaining('has 2') });
    expect(svidIdentity(await certWith([{ type: 'dns', value: 'localhost' }]))).toMatchObject({ ok: false, error: expect.stringContaining('has 0') });
    expect(svidIdentity(Buffer.from('not a certificate'))).toMatchObject({ ok: false, error: 'the certificate cannot be parsed' });
  });
});

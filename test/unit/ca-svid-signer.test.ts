import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkCsr } from '../../src/ca/csr-check.js';
import { makeCsr } from '../../src/ca/csr-make.js';
import { subjectKeyId } from '../../src/ca/svid-signer.js';
import { x509 } from '../../src/spiffe/x509.js';
import { ecKey, testRoot } from '../helpers/pki.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

async function leafFor(opts: { notAfter?: Date; dnsNames?: string[] } = {}) {
  const root = await testRoot();
  const csr = checkCsr(await makeCsr(ecKey()));
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2026-01-01T01:00:00Z');
  const signed = root.signer.sign({ spki: csr.spki, spiffeId: ID, notBefore, notAfter, ...(opts.dnsNames ? { dnsNames: opts.dnsNames } : {}) });
  return { root, csr, signed, notBefore, notAfter, cert: new x509.X509Certificate(signed.der), node: new X509Certificate(signed.der) };
}

describe('SvidSigner', () => {
  it('makes a leaf that verifies against its root and carries the SVID profile', async () => {
    const { root, csr, signed, cert, node, notBefore, notAfter } = await leafFor();
    expect(node.verify(new X509Certificate(root.cert).publicKey)).toBe(true);
    expect(node.checkIssued(new X509Certificate(root.cert))).toBe(true);
    expect(node.publicKey.equals(csr.publicKey)).toBe(true);
    expect(cert.subject).toBe('');
    expect(cert.notBefore).toEqual(notBefore);
    expect(cert.notAfter).toEqual(notAfter);

    const basic = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect([basic.ca, basic.critical]).toEqual([false, true]);
    const usage = cert.getExtension(x509.KeyUsagesExtension)!;
    expect([usage.usages, usage.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(true);
    expect(san.names.items.map((n) => [n.type, n.value])).toEqual([['url', ID]]);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(ski.keyId).toBe(subjectKeyId(csr.spki).toString('hex'));
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    const rootSki = new x509.X509Certificate(root.cert).getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(rootSki.keyId);

    // Serial: positive, random, at least 64 bits.
    expect(signed.serialHex).toHaveLength(32);
    expect(parseInt(signed.serialHex.slice(0, 2), 16) & 0x80).toBe(0);
  });

  it('gives every leaf a different serial', async () => {
    const root = await testRoot();
    const spki = checkCsr(await makeCsr(ecKey())).spki;
    const serials = new Set(
      Array.from({ length: 200 }, () => root.signer.sign({ spki, spiffeId: ID, notBefore: new Date(), notAfter: new Date(Date.now() + 60_000) }).serialHex),
    );
    expect(serials.size).toBe(200);
  });

  it('adds DNS names after the single URI SAN', async () => {
    const { cert } = await leafFor({ dnsNames: ['web.local', 'localhost'] });
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => [n.type, n.value]);
    expect(names).toEqual([['url', ID], ['dns', 'web.local'], ['dns', 'localhost']]);
  });

  it('encodes dates from 2050 on as GeneralizedTime (RFC 5280)', async () => {
    const { node } = await leafFor({ notAfter: new Date('2051-06-01T00:00:00Z') });
    expect(new Date(node.validTo).toISOString()).toBe('2051-06-01T00:00:00.000Z');
  });

  it('computes the subject key id as SHA-1 of the public key bits', async () => {
    const key = ecKey();
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    // For P-256 the key bits are the last 65 bytes of the SPKI.
    expect(subjectKeyId(spki)).toEqual(createHash('sha1').update(spki.subarray(spki.length - 65)).digest());
  });
});

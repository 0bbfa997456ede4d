import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CaError } from '../../src/ca/ca-error.js';
import { issueLeaf } from '../../src/ca/issue-leaf.js';
import { makeCsr } from '../../src/ca/csr-make.js';
import { x509 } from '../../src/spiffe/x509.js';
import { csrWith, ecKey, testRoot } from '../helpers/pki.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-01-01T01:00:00Z') };

async function refusal(job: Parameters<typeof issueLeaf>[1]): Promise<CaError> {
  const { signer } = await testRoot();
  try {
    issueLeaf(signer, job);
  } catch (err) {
    expect(err).toBeInstanceOf(CaError);
    return err as CaError;
  }
  throw new Error('issueLeaf should have refused');
}

describe('issueLeaf', () => {
  it('signs a CSR given as DER bytes for the granted ID', async () => {
    const { signer, cert } = await testRoot();
    const pem = await makeCsr(ecKey());
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const leaf = issueLeaf(signer, { csr: new Uint8Array(der), spiffeId: ID, ...validity });
    const node = new X509Certificate(leaf.der);
    expect(node.subjectAltName).toBe(`URI:${ID}`);
    expect(node.verify(new X509Certificate(cert).publicKey)).toBe(true);
  });

  it('refuses a malformed CSR as invalid_argument', async () => {
    const err = await refusal({ csr: 'garbage', spiffeId: ID, ...validity });
    expect([err.code, err.message]).toEqual(['invalid_argument', 'the CSR is neither DER nor a PEM "CERTIFICATE REQUEST"']);
  });

  it('refuses a CSR that asks for another identity as permission_denied', async () => {
    const other = 'spiffe://example.org/ns/default/sa/admin';
    const csr = await csrWith(ecKey(), [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: other }])]);
    const err = await refusal({ csr, spiffeId: ID, ...validity });
    expect([err.code, err.message]).toEqual(['permission_denied', `the CSR asks for ${other} but this caller may only get ${ID}`]);
  });
});

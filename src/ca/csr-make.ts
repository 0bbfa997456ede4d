import type { KeyObject } from 'node:crypto';
import { x509 } from '../spiffe/x509.js';
import { toCryptoKeyPair } from './keys.js';

/**
 * A PKCS#10 CSR for `privateKey`, PEM. The subject is left empty and no extensions are asked for: the CA decides
 * the identity from the caller's credential, not from the CSR.
 */
export async function makeCsr(privateKey: KeyObject): Promise<string> {
  const keys = await toCryptoKeyPair(privateKey);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: keys.privateKey.algorithm.name, hash: 'SHA-256' } as never,
  });
  return csr.toString('pem');
}

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createRootCertificate } from '../../src/ca/root-cert.js';
import { SvidSigner } from '../../src/ca/svid-signer.js';
import { x509 } from '../../src/spiffe/x509.js';
import { toCryptoKeyPair } from '../../src/ca/keys.js';

export function ecKey(curve = 'prime256v1'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

export async function testRoot(trustDomain = 'example.org', key = ecKey()): Promise<{ key: KeyObject; cert: Buffer; signer: SvidSigner }> {
  const cert = await createRootCertificate({ privateKey: key, trustDomain, ttlDays: 30 });
  return { key, cert, signer: new SvidSigner({ certificate: cert, chain: [], privateKey: key }) };
}

/** A CSR with any extensions the test wants, signed by `key`. */
export async function csrWith(key: KeyObject, extensions: x509.Extension[] = [], hash = 'SHA-256'): Promise<string> {
  const keys = await toCryptoKeyPair(key);
  const name = keys.privateKey.algorithm.name;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: { name, hash } as never, extensions });
  return csr.toString('pem');
}

import type { KeyObject } from 'node:crypto';
import { trustDomainId } from '../spiffe/id.js';
import { x509 } from '../spiffe/x509.js';
import { toCryptoKeyPair, webCryptoAlgorithm } from './keys.js';

// A self-signed root for one trust domain (SPIFFE X509-SVID spec, section 4.1: signing certificates carry the
// trust domain's SPIFFE ID). Made rarely, so the slower @peculiar/x509 builder is fine here.

export interface RootOptions {
  privateKey: KeyObject;
  trustDomain: string;
  ttlDays: number;
  now?: Date;
}

export async function createRootCertificate(opts: RootOptions): Promise<Buffer> {
  const now = opts.now ?? new Date();
  const keys = await toCryptoKeyPair(opts.privateKey);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    // The timestamp tells generations apart, so old and new roots never share a subject during a rotation.
    name: `CN=meshward root ${opts.trustDomain} ${stamp}, O=meshward`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.ttlDays * 86400_000),
    keys,
    signingAlgorithm: webCryptoAlgorithm(opts.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(opts.trustDomain) }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return Buffer.from(cert.rawData);
}

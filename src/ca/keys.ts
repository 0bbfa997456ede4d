import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

// CA key handling. Keys are PKCS#8 PEM; encrypted with AES-256-CBC (PBES2) when a passphrase is given.

export const PASSPHRASE_ENV = 'MESHWARD_CA_PASSPHRASE';

export function generateCaKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

export function privateKeyToPem(key: KeyObject, passphrase?: string): string {
  return passphrase
    ? (key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string)
    : (key.export({ type: 'pkcs8', format: 'pem' }) as string);
}

/** Reads a private key file; errors say whether a passphrase is missing or wrong rather than "bad decrypt". */
export function readPrivateKey(file: string, passphrase?: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const encrypted = pem.includes('ENCRYPTED PRIVATE KEY') || pem.includes('Proc-Type: 4,ENCRYPTED');
  if (encrypted && !passphrase) throw new Error(`the key ${file} is encrypted: set ${PASSPHRASE_ENV}`);
  try {
    return createPrivateKey(encrypted ? { key: pem, passphrase: passphrase! } : { key: pem });
  } catch {
    throw new Error(encrypted ? `cannot decrypt the key ${file}: wrong ${PASSPHRASE_ENV}?` : `the key ${file} is not a valid PEM private key`);
  }
}

/** Whether a private key is the one whose public half is in `certificatePublicKey` (SPKI DER or KeyObject). */
export function keyMatches(privateKey: KeyObject, certificatePublicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const b = certificatePublicKey.export({ type: 'spki', format: 'der' });
  return a.equals(b);
}

/** A WebCrypto key pair for @peculiar/x509, which signs through WebCrypto. */
export async function toCryptoKeyPair(privateKey: KeyObject): Promise<webcrypto.CryptoKeyPair> {
  const algorithm = webCryptoAlgorithm(privateKey);
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const [priv, pub] = await Promise.all([
    webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, true, ['sign']),
    webcrypto.subtle.importKey('spki', spki, algorithm, true, ['verify']),
  ]);
  return { privateKey: priv, publicKey: pub };
}

export function webCryptoAlgorithm(key: KeyObject): (webcrypto.EcKeyImportParams & { hash: string }) | webcrypto.RsaHashedImportParams {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
      if (curve === 'secp384r1') return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
      throw new Error(`unsupported CA key curve ${curve}`);
    }
    case 'rsa':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    default:
      throw new Error(`unsupported CA key type ${key.asymmetricKeyType}`);
  }
}

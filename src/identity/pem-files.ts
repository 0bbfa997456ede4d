import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pemToDerList, type ParseResult } from '../spiffe/index.js';

// Certificates and keys as files others write (meshward's CA, cert-manager, SPIRE, an ACME client, openssl): read as
// one set, and each checked for what a reader sees of a file still being written. Errors say what is wrong in words
// a person can act on, and never carry anything derived from key material.

/** An issuer whose clock runs a little ahead must not make a freshly written certificate look unusable. */
const CLOCK_SKEW_MS = 60_000;
const PEM_CERTIFICATE_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END_LINE = /-----END [A-Z0-9 ]+-----/g;

/**
 * Reads the files (each [path, what it holds]) as UTF-8, and a hash of them all, so that an event that changed none
 * of them can be told apart. Rejects naming the file that cannot be read.
 */
export async function readFileSet(files: ReadonlyArray<readonly [string, string]>): Promise<{ contents: string[]; hash: string }> {
  const read = await Promise.all(files.map(([file, what]) => readNamed(file, what)));
  const hash = createHash('sha256');
  for (const content of read) hash.update(`${content.length}:`).update(content);
  return { contents: read.map((content) => content.toString('utf8')), hash: hash.digest('hex') };
}

async function readNamed(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new Error(`${file}: cannot read the ${what}: ${reason}`);
  }
}

export function parseCertificates(pem: string): ParseResult<X509Certificate[]> {
  let ders: Buffer[];
  try {
    ders = pemToDerList(pem);
  } catch {
    return { ok: false, error: 'a PEM certificate in the file cannot be parsed' };
  }
  // What a reader sees of a file still being written (or cut short): a block begun but never ended, or text after
  // the last block, the start of the next one (a bundle short of a root would still load, and refuse peers).
  if (textAfterLastBlock(pem) || ders.length < pem.split(PEM_CERTIFICATE_BEGIN).length - 1) {
    return { ok: false, error: 'the file ends inside a PEM certificate (it may still be being written)' };
  }
  if (ders.length === 0) return { ok: false, error: 'the file holds no PEM certificate' };
  return { ok: true, value: ders.map((der) => new X509Certificate(der)) };
}

/** Whether anything but white space follows the last complete PEM block (of any type: a key may follow the chain). */
function textAfterLastBlock(pem: string): boolean {
  let end = -1;
  for (const m of pem.matchAll(PEM_END_LINE)) end = m.index + m[0].length;
  return end !== -1 && pem.slice(end).trim() !== '';
}

export function parsePrivateKey(pem: string): ParseResult<KeyObject> {
  if (pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || pem.includes('Proc-Type: 4,ENCRYPTED')) {
    return { ok: false, error: 'the private key is encrypted; give meshward an unencrypted key and protect the file with mode 0600' };
  }
  try {
    return { ok: true, value: createPrivateKey({ key: pem, format: 'pem' }) };
  } catch {
    // The parser's own message is not passed on: nothing derived from key material goes into an error or a log.
    return { ok: false, error: 'the file holds no private key that can be parsed (PEM PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY")' };
  }
}

/** Whether the private key is the certificate's. */
export function keyMatches(key: KeyObject, cert: X509Certificate): boolean {
  return publicKeyDer(createPublicKey(key)).equals(publicKeyDer(cert.publicKey));
}

function publicKeyDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** Why the certificate cannot be used now (`expired at ...`, `is not valid until ...`), or undefined. */
export function validityError(cert: X509Certificate, now: Date): string | undefined {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now.getTime() > notAfter.getTime()) return `expired at ${notAfter.toISOString()}`;
  if (now.getTime() + CLOCK_SKEW_MS < notBefore.getTime()) return `is not valid until ${notBefore.toISOString()}`;
  return undefined;
}

import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { checkCsr, CsrError, MAX_CSR_BYTES } from '../../src/ca/csr-check.js';
import { makeCsr } from '../../src/ca/csr-make.js';
import { x509 } from '../../src/spiffe/x509.js';
import { tempDir } from '../helpers/cli.js';
import { csrWith, ecKey } from '../helpers/pki.js';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CsrError);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('checkCsr', () => {
  it('accepts P-256, P-384, RSA-2048 and Ed25519 CSRs, PEM or DER, and returns the key', async () => {
    for (const key of [ecKey(), ecKey('secp384r1'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey]) {
      const pem = await makeCsr(key);
      const checked = checkCsr(pem);
      expect(checked.publicKey.equals(createPublicKey(key))).toBe(true);
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      expect(checkCsr(der).spki.equals(checked.spki)).toBe(true);
    }
  });

  it('refuses a CSR whose signature does not match its key (no proof of possession)', async () => {
    const der = Buffer.from((await makeCsr(ecKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff;
    expect(refusal(() => checkCsr(der))).toMatch(/signature does not verify|malformed/);
  });

  it('refuses a CSR whose EC public key is not a point on the curve', async () => {
    const der = Buffer.from((await makeCsr(ecKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const point = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 4;
    der[point + 10] = der[point + 10]! ^ 0x01;
    expect(refusal(() => checkCsr(der))).toMatch(/unknown or unsupported type|signature does not verify/);
  });

  it('refuses weak RSA keys and unknown curves', async () => {
    // openssl makes these: WebCrypto refuses to create them at all.
    const { dir, cleanup } = tempDir();
    const opensslCsr = (key: KeyObject) => {
      writeFileSync(join(dir, 'k.pem'), key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      return execFileSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=x']);
    };
    onTestFinished(cleanup);
    expect(refusal(() => checkCsr(opensslCsr(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)))).toContain('1024 bits; at least 2048');
    expect(refusal(() => checkCsr(opensslCsr(ecKey('secp256k1'))))).toContain('curve secp256k1');
  });

  it('refuses a CSR asking for CA:TRUE', async () => {
    const pem = await csrWith(ecKey(), [new x509.BasicConstraintsExtension(true, undefined, true)]);
    expect(refusal(() => checkCsr(pem))).toContain('CA:TRUE');
  });

  it('reports the URI SANs a CSR asks for', async () => {
    const pem = await csrWith(ecKey(), [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/a' }])]);
    expect(checkCsr(pem).requestedUris).toEqual(['spiffe://example.org/a']);
  });

  it('refuses oversized, empty, garbage and truncated input with a reason', async () => {
    expect(refusal(() => checkCsr(Buffer.alloc(MAX_CSR_BYTES + 1, 0x30)))).toContain(`limit is ${MAX_CSR_BYTES}`);
    expect(refusal(() => checkCsr(''))).toContain('empty');
    expect(refusal(() => checkCsr('hello'))).toContain('neither DER nor a PEM');
    const der = Buffer.from((await makeCsr(ecKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(refusal(() => checkCsr(der.subarray(0, 40)))).toContain('malformed');
    expect(refusal(() => checkCsr(Buffer.concat([der, Buffer.from([0])])))).toContain('trailing data');
  });
});

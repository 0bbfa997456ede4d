import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { checkServerCertificate } from '../../src/identity/index.js';
import { checkCsr } from '../../src/ca/csr-check.js';
import { makeCsr } from '../../src/ca/csr-make.js';
import { derToPem } from '../../src/spiffe/index.js';
import { tempDir } from '../helpers/cli.js';
import { OpensslPki } from '../helpers/openssl-pki.js';
import { ecKey, testRoot } from '../helpers/pki.js';

// The ingress certificate check (identity/server-certificate.ts), pure, on files made with openssl: any CA's
// certificate is fine; what is refused is what every client would trip over, each error starting with the file to fix.

describe('the server certificate of the ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-server-cert-');
  afterAll(cleanup);
  const pki = new OpensslPki(dir);
  const root = pki.root('public');
  const extensions = ['basicConstraints=CA:FALSE', 'subjectAltName=DNS:api.example.com'];
  const key = pki.key('edge');
  const cert = pki.cert('edge', root, key, extensions);
  const files = { cert, key };
  const read = (file: string) => readFileSync(file, 'utf8');
  const check = (certPem: string, keyPem: string, now = new Date()) => checkServerCertificate(files, certPem, keyPem, now);

  it('takes a certificate with its key (SEC1 too), and a chain (more certificates after the leaf) as the file has it', () => {
    const chain = read(cert) + read(root.cert);
    const checked = check(chain, read(key));
    expect(checked).toMatchObject({ ok: true, value: { certPem: chain, subject: 'O=edge' } });
    const sec1 = pki.key('edge-sec1', 'sec1');
    expect(check(read(pki.cert('edge-sec1', root, sec1, extensions)), read(sec1)).ok).toBe(true);
  });

  it('takes a certificate with an empty subject (an SVID, as `meshward ca issue --dns` makes for a try), named by its SAN', async () => {
    const root = await testRoot();
    const key = ecKey();
    const now = new Date();
    const csr = checkCsr(await makeCsr(key));
    const leaf = root.signer.sign({ spki: csr.spki, spiffeId: 'spiffe://example.org/ns/default/sa/edge', dnsNames: ['localhost'], notBefore: now, notAfter: new Date(now.getTime() + 60_000) });
    const checked = check(derToPem(leaf.der), key.export({ type: 'pkcs8', format: 'pem' }) as string);
    expect(checked).toMatchObject({ ok: true, value: { subject: 'URI:spiffe://example.org/ns/default/sa/edge, DNS:localhost' } });
  });

  it('refuses a key that is not the certificate\'s, a file cut short, an encrypted key, one out of date', () => {
    expect(check(read(cert), read(pki.key('other')))).toEqual({ ok: false, error: `${key}: the private key does not match the certificate in ${cert}` });
    const whole = read(cert);
    expect(check(whole.slice(0, whole.length / 2), read(key))).toEqual({ ok: false, error: `${cert}: the file ends inside a PEM certificate (it may still be being written)` });
    expect(check('', read(key))).toEqual({ ok: false, error: `${cert}: the file holds no PEM certificate` });
    expect(check(whole, 'nonsense')).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`^${key}: the file holds no private key`)) });
    const encrypted = pki.run('pkey', '-in', key, '-aes256', '-passout', 'pass:secret');
    expect(check(whole, encrypted)).toMatchObject({ ok: false, error: expect.stringContaining('the private key is encrypted') });
    const later = new Date(Date.now() + 3 * 24 * 3600 * 1000);
    expect(check(whole, read(key), later)).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`^${cert}: the certificate expired at `)) });
  });
});

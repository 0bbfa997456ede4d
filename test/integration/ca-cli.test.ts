import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';
import { initCaDir, TD } from '../helpers/ca.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const mode = (file: string) => statSync(file).mode & 0o777;

describe('meshward ca (CLI)', () => {
  const { dir, cleanup } = tempDir();
  let caDir: string;
  beforeAll(async () => {
    caDir = await initCaDir(dir);
  });
  afterAll(cleanup);

  it('init makes a P-256 root with the CA profile, a 0600 key and a bundle', () => {
    const text = openssl('x509', '-in', join(caDir, 'root.pem'), '-noout', '-text');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain(`URI:spiffe://${TD}`);
    expect(text).toContain('NIST CURVE: P-256');
    expect(mode(join(caDir, 'root.key'))).toBe(0o600);
    expect(readFileSync(join(caDir, 'root.key'), 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
    expect(readFileSync(join(caDir, 'bundle.pem'), 'utf8')).toBe(readFileSync(join(caDir, 'root.pem'), 'utf8'));
  });

  it('refuses to overwrite a CA without --force, and replaces it with --force', async () => {
    const before = readFileSync(join(caDir, 'root.pem'), 'utf8');
    const refused = await runCli(['ca', 'init', '--trust-domain', TD, '--dir', caDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already holds a CA; pass --force');
    expect(readFileSync(join(caDir, 'root.pem'), 'utf8')).toBe(before);
    const other = tempDir();
    const otherCa = await initCaDir(other.dir);
    const forced = await runCli(['ca', 'init', '--trust-domain', TD, '--dir', otherCa, '--force']);
    expect(forced.code).toBe(0);
    other.cleanup();
  });

  it('refuses a trust domain that is not one', async () => {
    const r = await runCli(['ca', 'init', '--trust-domain', 'Example.ORG', '--dir', join(dir, 'bad')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('trust domain must be lower case');
  });

  it('issue makes a key here and an SVID that openssl verifies, with the profile the spec asks for', async () => {
    const out = join(dir, 'web');
    const r = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--ttl', '30m', '--dns', 'web.local', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(mode(`${out}.key`)).toBe(0o600);
    expect(openssl('verify', '-CAfile', join(caDir, 'bundle.pem'), `${out}.pem`)).toContain(': OK');
    const text = openssl('x509', '-in', `${out}.pem`, '-noout', '-text');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toMatch(new RegExp(`Subject Alternative Name: critical\\s+URI:${WEB}, DNS:web.local`));
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('Authority Key Identifier');
    expect(openssl('x509', '-in', `${out}.pem`, '-noout', '-pubkey')).toBe(openssl('pkey', '-in', `${out}.key`, '-pubout'));
    const end = new Date(openssl('x509', '-in', `${out}.pem`, '-noout', '-enddate').split('=')[1]!.trim());
    expect(end.getTime() - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(end.getTime() - Date.now()).toBeLessThanOrEqual(30 * 60_000);
  });

  it('sign signs CSRs made by openssl (EC and RSA) and prints the chain', async () => {
    for (const [name, keyArgs] of [
      ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
      ['rsa', ['-newkey', 'rsa:2048']],
    ] as const) {
      openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', '/CN=ignored', '-out', join(dir, `${name}.csr`));
      const r = await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, `${name}.csr`), '--spiffe-id', WEB]);
      expect(r.code, r.stderr).toBe(0);
      writeFileSync(join(dir, `${name}.pem`), r.stdout);
      expect(openssl('verify', '-CAfile', join(caDir, 'bundle.pem'), join(dir, `${name}.pem`))).toContain(': OK');
      const text = openssl('x509', '-in', join(dir, `${name}.pem`), '-noout', '-text');
      expect(text).toContain(`URI:${WEB}`);
      expect(text).not.toContain('CN = ignored');
      if (name === 'rsa') expect(text).toContain('Digital Signature, Key Encipherment');
    }
  });

  it.each([
    ['a CA:TRUE CSR', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-addext', 'basicConstraints=critical,CA:TRUE'], /CA:TRUE/],
    ['an RSA-1024 CSR', ['-newkey', 'rsa:1024'], /1024 bits; at least 2048/],
  ])('sign refuses %s with a reason', async (name, keyArgs, reason) => {
    const csr = join(dir, `${name.replace(/\W/g, '')}.csr`);
    openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', `${csr}.key`, '-subj', '/CN=x', '-out', csr);
    const r = await runCli(['ca', 'sign', '--dir', caDir, '--csr', csr, '--spiffe-id', WEB]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).toBe('');
  });

  it('sign refuses a foreign trust domain, a bad SPIFFE ID, an oversized or missing CSR', async () => {
    const csr = join(dir, 'ec.csr');
    const foreign = await runCli(['ca', 'sign', '--dir', caDir, '--csr', csr, '--spiffe-id', 'spiffe://evil.org/x']);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('this CA issues for "example.org" only');
    const badId = await runCli(['ca', 'sign', '--dir', caDir, '--csr', csr, '--spiffe-id', 'spiffe:/x']);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('"spiffe:/x" is not a SPIFFE ID');
    writeFileSync(join(dir, 'big.csr'), 'A'.repeat(17 * 1024));
    const big = await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'big.csr'), '--spiffe-id', WEB]);
    expect(big.stderr).toContain('limit is 16384');
    const missing = await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'nope.csr'), '--spiffe-id', WEB]);
    expect(missing.stderr).toContain('nope.csr: file not found');
  });

  it('issue, sign and token refuse the trust domain ID: an SVID needs a path', async () => {
    const bare = `spiffe://${TD}`;
    const runs = {
      issue: await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', bare, '--out', join(dir, 'bare')]),
      sign: await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'ec.csr'), '--spiffe-id', bare]),
      token: await runCli(['ca', 'token', '--dir', caDir, '--spiffe-id', bare]),
    };
    for (const [command, r] of Object.entries(runs)) {
      expect(r.code, command).toBe(2);
      expect(r.stderr, command).toContain(`--spiffe-id: "${bare}" is a trust domain ID, not a workload's: an SVID's SPIFFE ID must have a path`);
      expect(r.stdout, command).toBe('');
    }
    expect(existsSync(join(dir, 'bare.pem'))).toBe(false);
  });

  it('clamps a TTL over the maximum and says so', async () => {
    const r = await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'ec.csr'), '--spiffe-id', WEB, '--ttl', '48h']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('note: requested TTL 2d exceeds the CA maximum 1d; issued for 1d');
  });

  it('token prints a JWT bound to the ID, and refuses a foreign trust domain', async () => {
    const r = await runCli(['ca', 'token', '--dir', caDir, '--spiffe-id', WEB]);
    expect(r.code).toBe(0);
    const [, payload] = r.stdout.trim().split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: WEB, aud: 'meshward-ca', iss: `spiffe://${TD}` });
    expect(claims.exp - claims.iat).toBe(600);
    const foreign = await runCli(['ca', 'token', '--dir', caDir, '--spiffe-id', 'spiffe://evil.org/x']);
    // A semantic refusal (the flag is well-formed; this CA does not issue for it): exit 1, no usage.
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toBe('meshward ca: --spiffe-id spiffe://evil.org/x is not in this CA\'s trust domain "example.org"\n');
  });

  it('rotate starts a staged rotation; status shows it; a second rotate is refused', async () => {
    const other = tempDir();
    const otherCa = await initCaDir(other.dir);
    const r = await runCli(['ca', 'rotate', '--dir', otherCa, '--propagation-delay', '1h']);
    expect(r.code, r.stderr).toBe(0);
    expect(openssl('crl2pkcs7', '-nocrl', '-certfile', join(otherCa, 'bundle.pem')).length).toBeGreaterThan(0);
    expect(readFileSync(join(otherCa, 'bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const status = await runCli(['ca', 'status', '--dir', otherCa]);
    expect(status.stdout).toContain('rotation: new root published');
    const again = await runCli(['ca', 'rotate', '--dir', otherCa]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already in progress');
    other.cleanup();
  });
});

describe('meshward ca with MESHWARD_CA_PASSPHRASE', () => {
  it('encrypts the key at rest and needs the passphrase to use it', async () => {
    const { dir, cleanup } = tempDir();
    const env = { MESHWARD_CA_PASSPHRASE: 'correct horse battery staple' };
    const caDir = await initCaDir(dir, [], env);
    expect(readFileSync(join(caDir, 'root.key'), 'utf8')).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(openssl('pkey', '-in', join(caDir, 'root.key'), '-passin', `pass:${env.MESHWARD_CA_PASSPHRASE}`, '-noout')).toBe('');
    const args = ['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', join(dir, 'w')];
    const none = await runCli(args, { env: { MESHWARD_CA_PASSPHRASE: '' } });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('is encrypted: set MESHWARD_CA_PASSPHRASE');
    const wrong = await runCli(args, { env: { MESHWARD_CA_PASSPHRASE: 'nope' } });
    expect(wrong.stderr).toContain('wrong MESHWARD_CA_PASSPHRASE');
    expect((await runCli(args, { env })).code).toBe(0);
    cleanup();
  });
});

describe('meshward ca init --import-cert/--import-key', () => {
  it('signs with an existing intermediate; SVIDs chain to the upstream root', async () => {
    const { dir, cleanup } = tempDir();
    const f = (name: string) => join(dir, name);
    writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('root.key'), '-out', f('root.pem'), '-subj', '/CN=upstream root', '-days', '30');
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('inter.key'), '-out', f('inter.csr'), '-subj', '/CN=cluster intermediate');
    openssl('x509', '-req', '-in', f('inter.csr'), '-CA', f('root.pem'), '-CAkey', f('root.key'), '-CAcreateserial', '-out', f('inter.pem'), '-days', '20', '-extfile', f('ca.ext'));

    const mismatch = await runCli(['ca', 'init', '--trust-domain', TD, '--dir', f('bad'), '--import-cert', f('inter.pem'), '--import-key', f('root.key'), '--import-bundle', f('root.pem')]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('does not belong to the certificate');

    const caDir = f('imported');
    const init = await runCli(['ca', 'init', '--trust-domain', TD, '--dir', caDir, '--import-cert', f('inter.pem'), '--import-key', f('inter.key'), '--import-bundle', f('root.pem')]);
    expect(init.code, init.stderr).toBe(0);
    expect(readFileSync(join(caDir, 'bundle.pem'), 'utf8').trim()).toBe(readFileSync(f('root.pem'), 'utf8').trim());
    const r = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', f('w')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(f('w.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(openssl('verify', '-CAfile', f('root.pem'), '-untrusted', f('w.pem'), f('w.pem'))).toContain(': OK');
    const rotate = await runCli(['ca', 'rotate', '--dir', caDir]);
    expect(rotate.stderr).toContain('rotate it upstream');
    cleanup();
  });
});

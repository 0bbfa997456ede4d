import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TD } from './ca.js';

// Certificates made with openssl alone: the sidecar and the SVID sources must work with PKI that meshward did not make.

const WEB = `spiffe://${TD}/ns/default/sa/web`;
export const SVID_EXTENSIONS = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth'];
export const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];

export interface CertAndKey {
  cert: string;
  key: string;
}

/** A PKI made with openssl alone, in one directory; every method returns the paths it wrote. */
export class OpensslPki {
  constructor(readonly dir: string) {}

  /** A self-signed root with the trust domain's ID as its URI SAN, as SPIFFE roots usually carry. */
  root(name: string, trustDomain = TD): CertAndKey {
    const cert = join(this.dir, `${name}.pem`);
    const key = join(this.dir, `${name}.key`);
    this.run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/O=${name}`,
      '-addext', `subjectAltName=URI:spiffe://${trustDomain}`, ...CA_EXTENSIONS.flatMap((e) => ['-addext', e]));
    chmodSync(key, 0o600);
    return { cert, key };
  }

  /** An EC P-256 key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`, openssl's traditional form). */
  key(name: string, format: 'pkcs8' | 'sec1' = 'pkcs8'): string {
    const file = join(this.dir, `${name}.key`);
    if (format === 'pkcs8') this.run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file);
    else this.run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file);
    chmodSync(file, 0o600);
    return file;
  }

  /** A certificate for `key` signed by `issuer`: valid for a day, or between `dates` (YYYYMMDDHHMMSSZ). */
  cert(name: string, issuer: CertAndKey, key: string, extensions: string[], dates?: { start: string; end: string }): string {
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    const out = join(this.dir, `${name}.pem`);
    writeFileSync(ext, `${extensions.join('\n')}\n`);
    this.run('req', '-new', '-key', key, '-subj', `/O=${name}`, '-out', csr);
    if (!dates) {
      this.run('x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-days', '1', '-extfile', ext, '-out', out);
      return out;
    }
    // OpenSSL 3.0's `x509 -req` cannot set a start date (`-not_before` came in 3.4); `openssl ca` can.
    const db = join(this.dir, `${name}.db`);
    mkdirSync(db);
    writeFileSync(join(db, 'index.txt'), '');
    writeFileSync(join(db, 'ca.cnf'), `[ca]\ndefault_ca = test\n[test]\ndatabase = ${db}/index.txt\nnew_certs_dir = ${db}\nserial = ${db}/serial\nrand_serial = yes\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\norganizationName = optional\n`);
    this.run('ca', '-batch', '-config', join(db, 'ca.cnf'), '-cert', issuer.cert, '-keyfile', issuer.key, '-in', csr, '-startdate', dates.start, '-enddate', dates.end, '-extfile', ext, '-notext', '-out', out);
    return out;
  }

  /** An SVID and its key, in one step. */
  svid(name: string, issuer: CertAndKey, san = `URI:${WEB}`, keyFormat: 'pkcs8' | 'sec1' = 'pkcs8'): CertAndKey {
    const key = this.key(name, keyFormat);
    return { cert: this.cert(name, issuer, key, [`subjectAltName=${san}`, ...SVID_EXTENSIONS]), key };
  }

  run(...args: string[]): string {
    return execFileSync('openssl', args, { cwd: this.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
}


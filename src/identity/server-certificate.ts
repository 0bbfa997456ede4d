import type { ParseResult } from '../spiffe/index.js';
import type { Logger } from '../telemetry/index.js';
import { keyMatches, parseCertificates, parsePrivateKey, readFileSet, validityError } from './pem-files.js';
import { WatchedFileSet } from './watched-file-set.js';

// The edge's own certificate (`ingress.tls`): an ordinary server certificate for clients outside the mesh, from any
// CA (an ACME client's fullchain.pem and privkey.pem, cert-manager's tls.crt and tls.key). It is no SVID and chains
// to no mesh root, so what is checked is what every client would trip over: the key is the certificate's, both files
// are whole, and the certificate is in date. Watched as the SVID files are: a new pair that does not hold together is
// refused (and logged with why) while the last good one stays in use.

export interface ServerCertificateFiles {
  cert: string;
  key: string;
}

export interface ServerCertificate {
  /** The chain as the file has it (leaf first), sent as is. */
  certPem: string;
  keyPem: string;
  /** Its subject, or its subjectAltName when the subject is empty: for the log. */
  subject: string;
  notAfter: Date;
}

/** Whether the two files make a certificate a server can offer now; errors start with the file to fix. */
export function checkServerCertificate(files: ServerCertificateFiles, certPem: string, keyPem: string, now: Date): ParseResult<ServerCertificate> {
  const chain = parseCertificates(certPem);
  if (!chain.ok) return { ok: false, error: `${files.cert}: ${chain.error}` };
  const leaf = chain.value[0]!;
  const key = parsePrivateKey(keyPem);
  if (!key.ok) return { ok: false, error: `${files.key}: ${key.error}` };
  if (!keyMatches(key.value, leaf)) return { ok: false, error: `${files.key}: the private key does not match the certificate in ${files.cert}` };
  const invalid = validityError(leaf, now);
  if (invalid !== undefined) return { ok: false, error: `${files.cert}: the certificate ${invalid}` };
  // (A certificate may have an empty subject, and name itself in its subjectAltName alone.)
  const subject = leaf.subject ? leaf.subject.split('\n').join(', ') : (leaf.subjectAltName ?? '');
  return { ok: true, value: { certPem, keyPem, subject, notAfter: new Date(leaf.validTo) } };
}

/** Reads and checks the pair once (`meshward sidecar --check-config`). */
export async function loadServerCertificate(files: ServerCertificateFiles): Promise<ParseResult<ServerCertificate>> {
  try {
    const { contents } = await readFileSet([
      [files.cert, 'certificate'],
      [files.key, 'private key'],
    ]);
    return checkServerCertificate(files, contents[0]!, contents[1]!, new Date());
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * Loads the pair (rejects, naming the file and why, when it does not hold together) and follows it: `changed` hears
 * every new pair put in force.
 */
export async function watchServerCertificate(
  files: ServerCertificateFiles,
  logger: Logger,
  changed: (certificate: ServerCertificate) => void,
): Promise<WatchedFileSet<ServerCertificate>> {
  const described = (c: ServerCertificate) => ({ certFile: files.cert, subject: c.subject, notAfter: c.notAfter.toISOString() });
  const set = await WatchedFileSet.open<ServerCertificate>({
    files: [
      [files.cert, 'certificate'],
      [files.key, 'private key'],
    ],
    check: ([certPem, keyPem], now) => checkServerCertificate(files, certPem!, keyPem!, now),
    same: (a, b) => a.certPem === b.certPem && a.keyPem === b.keyPem,
    changed: (certificate) => {
      logger.info(described(certificate), 'server certificate reloaded; new connections use it');
      changed(certificate);
    },
    rejected: (error) => logger.warn({ error }, 'server certificate files rejected; the last good certificate stays in use'),
    cannotWatch: (directory, err) => logger.warn({ directory, err: err.message }, 'cannot watch the server certificate files; changes are not picked up'),
  });
  logger.info(described(set.current), 'server certificate loaded');
  return set;
}

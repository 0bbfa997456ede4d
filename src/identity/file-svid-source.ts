import type { X509Certificate } from 'node:crypto';
import { derToPem, svidIdentity, type ParseResult } from '../spiffe/index.js';
import type { Logger } from '../telemetry/index.js';
import { keyMatches, parseCertificates, parsePrivateKey, validityError } from './pem-files.js';
import { WatchedFileSet, type FileSetStats } from './watched-file-set.js';
import type { IdentitySnapshot, SvidSource } from './svid-source.js';

// An SVID from three files on disk (certificate chain, private key, trust bundle) written by anyone: meshward's
// CA, cert-manager, SPIRE's helper, openssl. Nothing about the issuer is assumed, so every load checks the set as
// a whole (checkSvidFiles, pure) and only a consistent set is ever published; a set that does not hold together is
// refused while the last good one stays (watched-file-set.ts).

export interface FileSvidSourceOptions {
  certFile: string;
  keyFile: string;
  bundleFile: string;
  trustDomain: string;
  logger?: Logger;
  /** How long the directories must be quiet before the files are read again (default 150 ms). */
  debounceMs?: number;
}

/** New snapshots published after start; new file sets refused as invalid (the last good snapshot stayed in use). */
export type FileSvidSourceStats = FileSetStats;

export interface SvidFiles {
  certFile: string;
  keyFile: string;
  bundleFile: string;
}

export interface SvidFileContents {
  certPem: string;
  keyPem: string;
  bundlePem: string;
}

const MAX_INTERMEDIATES = 8;

/**
 * Checks that the three files make one usable identity: the leaf is an SVID in the trust domain, the key is the
 * leaf's, the chain leads to a root in the bundle and nothing on it has expired. Errors name the file to fix.
 */
export function checkSvidFiles(files: SvidFiles, contents: SvidFileContents, trustDomain: string, now: Date): ParseResult<IdentitySnapshot> {
  const chain = parseCertificates(contents.certPem);
  if (!chain.ok) return fail(files.certFile, chain.error);
  const leaf = chain.value[0]!;
  const id = svidIdentity(Buffer.from(leaf.raw), trustDomain);
  if (!id.ok) return fail(files.certFile, id.error);

  const key = parsePrivateKey(contents.keyPem);
  if (!key.ok) return fail(files.keyFile, key.error);
  if (!keyMatches(key.value, leaf)) {
    return fail(files.keyFile, `the private key does not match the certificate in ${files.certFile}`);
  }

  const roots = parseCertificates(contents.bundlePem);
  if (!roots.ok) return fail(files.bundleFile, roots.error);
  const path = pathToRoot(leaf, chain.value.slice(1), roots.value);
  if (!path) return fail(files.certFile, `the certificate does not chain to a root in ${files.bundleFile}`);

  const invalidNow = pathValidityError(files, path, now);
  if (invalidNow) return { ok: false, error: invalidNow };

  return {
    ok: true,
    value: {
      svid: {
        spiffeId: id.value.uri,
        // Only what a peer needs to reach its root: a root or unrelated certificate also in the file is left out.
        certChainPem: path.chain.map(toPem).join(''),
        keyPem: key.value.export({ type: 'pkcs8', format: 'pem' }) as string,
        serial: leaf.serialNumber,
        notBefore: new Date(leaf.validFrom),
        notAfter: new Date(leaf.validTo),
      },
      bundlePem: roots.value.map(toPem).join(''),
    },
  };
}

export class FileSvidSource implements SvidSource {
  private constructor(
    private readonly files: WatchedFileSet<IdentitySnapshot>,
    private readonly listeners: Set<(s: IdentitySnapshot) => void>,
  ) {}

  /** Resolves once the files are loaded; rejects, naming the file and the reason, when they are not a valid SVID. */
  static async start(opts: FileSvidSourceOptions): Promise<FileSvidSource> {
    const { logger } = opts;
    const files: SvidFiles = { certFile: opts.certFile, keyFile: opts.keyFile, bundleFile: opts.bundleFile };
    const listeners = new Set<(s: IdentitySnapshot) => void>();
    const loaded = (msg: string, { svid }: IdentitySnapshot) =>
      logger?.info({ certFile: files.certFile, spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString() }, msg);
    const set = await WatchedFileSet.open<IdentitySnapshot>({
      files: [
        [files.certFile, 'certificate'],
        [files.keyFile, 'private key'],
        [files.bundleFile, 'trust bundle'],
      ],
      check: ([certPem, keyPem, bundlePem], now) => checkSvidFiles(files, { certPem: certPem!, keyPem: keyPem!, bundlePem: bundlePem! }, opts.trustDomain, now),
      same: sameMaterial,
      ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
      changed: (snapshot) => {
        loaded('SVID reloaded from files', snapshot);
        for (const listener of listeners) {
          // One failing subscriber must neither stop the others nor escape from a file-watch callback.
          try {
            listener(snapshot);
          } catch (err) {
            logger?.error({ err: (err as Error).message }, 'an SVID change listener failed');
          }
        }
      },
      rejected: (error, rejected) => logger?.warn({ error, rejected }, 'identity files rejected; the last good SVID stays in use'),
      cannotWatch: (directory, err) => logger?.warn({ directory, err: err.message }, 'cannot watch the identity files; reload with SIGHUP'),
    });
    loaded('SVID loaded from files', set.current);
    return new FileSvidSource(set, listeners);
  }

  current(): IdentitySnapshot | undefined {
    return this.files.current;
  }

  onChange(listener: (s: IdentitySnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  failedUpdates(): number {
    return this.files.stats().rejected;
  }

  stats(): FileSvidSourceStats {
    return this.files.stats();
  }

  /** Reads the files again (after any reload under way) and publishes them if they changed and are valid. */
  reload(): Promise<void> {
    return this.files.reload();
  }

  close(): Promise<void> {
    return this.files.close();
  }
}

/** The leaf, then intermediates from the cert file, up to a certificate in the bundle; undefined when there is no such path. */
function pathToRoot(leaf: X509Certificate, intermediates: X509Certificate[], roots: X509Certificate[]): { chain: X509Certificate[]; root: X509Certificate } | undefined {
  const chain = [leaf];
  for (let cursor = leaf; chain.length <= MAX_INTERMEDIATES + 1; ) {
    const root = roots.find((candidate) => issued(candidate, cursor));
    if (root) return { chain, root };
    const parent = intermediates.find((candidate) => candidate.ca && !chain.includes(candidate) && issued(candidate, cursor));
    if (!parent) return undefined;
    chain.push(parent);
    cursor = parent;
  }
  return undefined;
}

function issued(issuer: X509Certificate, cert: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** Peers check the validity of every certificate on the path, so an expired intermediate or root is as fatal as an expired leaf. */
function pathValidityError(files: SvidFiles, path: { chain: X509Certificate[]; root: X509Certificate }, now: Date): string | undefined {
  const [leaf, ...intermediates] = path.chain;
  const leafError = validityError(leaf!, now);
  if (leafError) return `${files.certFile}: the certificate ${leafError}`;
  for (const cert of intermediates) {
    const error = validityError(cert, now);
    if (error) return `${files.certFile}: the intermediate certificate "${subjectOf(cert)}" ${error}`;
  }
  const rootError = validityError(path.root, now);
  return rootError ? `${files.bundleFile}: the root "${subjectOf(path.root)}" ${rootError}` : undefined;
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

function toPem(cert: X509Certificate): string {
  return derToPem(Buffer.from(cert.raw));
}

function sameMaterial(a: IdentitySnapshot, b: IdentitySnapshot): boolean {
  return a.svid.certChainPem === b.svid.certChainPem && a.svid.keyPem === b.svid.keyPem && a.bundlePem === b.bundlePem;
}

function fail(file: string, reason: string): ParseResult<IdentitySnapshot> {
  return { ok: false, error: `${file}: ${reason}` };
}

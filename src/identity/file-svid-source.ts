import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { isWatchedFileEvent } from '../config/index.js';
import { derToPem, pemToDerList, svidIdentity, type ParseResult } from '../spiffe/index.js';
import type { Logger } from '../telemetry/index.js';
import type { IdentitySnapshot, SvidSource } from './svid-source.js';

// An SVID from three files on disk (certificate chain, private key, trust bundle) written by anyone: meshward's
// CA, cert-manager, SPIRE's helper, openssl. Nothing about the issuer is assumed, so every load checks the set as
// a whole (checkSvidFiles, pure) and only a consistent set is ever published. Writers replace these files in
// several steps (cert, then key; or a Kubernetes `..data` symlink swap), so a new set is read once the directory
// has been quiet for a moment, and a set that does not hold together is refused while the last good one stays.

export interface FileSvidSourceOptions {
  certFile: string;
  keyFile: string;
  bundleFile: string;
  trustDomain: string;
  logger?: Logger;
  /** How long the directories must be quiet before the files are read again (default 150 ms). */
  debounceMs?: number;
}

export interface FileSvidSourceStats {
  /** New snapshots published after start. */
  reloads: number;
  /** New file sets refused as invalid (the last good snapshot stayed in use). */
  rejected: number;
}

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

const DEFAULT_DEBOUNCE_MS = 150;
/** An issuer whose clock runs a little ahead must not make a freshly written SVID look unusable. */
const CLOCK_SKEW_MS = 60_000;
const MAX_INTERMEDIATES = 8;
const PEM_CERTIFICATE_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END_LINE = /-----END [A-Z0-9 ]+-----/g;

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
  if (!publicKeyDer(createPublicKey(key.value)).equals(publicKeyDer(leaf.publicKey))) {
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
  private snapshot: IdentitySnapshot | undefined;
  private readonly listeners = new Set<(s: IdentitySnapshot) => void>();
  private readonly counters: FileSvidSourceStats = { reloads: 0, rejected: 0 };
  private readonly watchers: FSWatcher[] = [];
  private readonly files: SvidFiles;
  private debounce: NodeJS.Timeout | undefined;
  /** Reloads run one after another, never overlapping. */
  private queue: Promise<void> = Promise.resolve();
  /** Hash of the raw files last loaded or refused, so that an event that changed none of them does nothing. */
  private lastSeen: string | undefined;
  private closed = false;

  private constructor(private readonly opts: FileSvidSourceOptions) {
    this.files = { certFile: opts.certFile, keyFile: opts.keyFile, bundleFile: opts.bundleFile };
  }

  /** Resolves once the files are loaded; rejects, naming the file and the reason, when they are not a valid SVID. */
  static async start(opts: FileSvidSourceOptions): Promise<FileSvidSource> {
    const source = new FileSvidSource(opts);
    // Watching before the first read: a write that lands while it is under way still triggers a reload.
    source.watchDirectories();
    const first = source.loadFirst();
    source.queue = first.catch(() => undefined);
    try {
      await first;
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  current(): IdentitySnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (s: IdentitySnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  failedUpdates(): number {
    return this.counters.rejected;
  }

  stats(): FileSvidSourceStats {
    return { ...this.counters };
  }

  /** Reads the files again (after any reload under way) and publishes them if they changed and are valid. */
  reload(): Promise<void> {
    this.queue = this.queue.then(() => this.reloadOnce());
    return this.queue;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.debounce);
    for (const watcher of this.watchers) watcher.close();
    await this.queue;
  }

  private async loadFirst(): Promise<void> {
    const { contents, hash } = await readSvidFiles(this.files);
    const checked = checkSvidFiles(this.files, contents, this.opts.trustDomain, new Date());
    if (!checked.ok) throw new Error(checked.error);
    this.lastSeen = hash;
    this.snapshot = checked.value;
    this.logLoaded('SVID loaded from files');
  }

  private async reloadOnce(): Promise<void> {
    if (this.closed) return;
    let read: Awaited<ReturnType<typeof readSvidFiles>>;
    try {
      read = await readSvidFiles(this.files);
    } catch (err) {
      // Forget what was seen: the file may reappear with the very content it had before it went.
      this.lastSeen = undefined;
      this.reject((err as Error).message);
      return;
    }
    if (read.hash === this.lastSeen || this.closed) return;
    this.lastSeen = read.hash;
    const checked = checkSvidFiles(this.files, read.contents, this.opts.trustDomain, new Date());
    if (!checked.ok) {
      this.reject(checked.error);
      return;
    }
    if (this.snapshot && sameMaterial(this.snapshot, checked.value)) return;
    this.snapshot = checked.value;
    this.counters.reloads += 1;
    this.logLoaded('SVID reloaded from files');
    this.publish(checked.value);
  }

  private reject(error: string): void {
    this.counters.rejected += 1;
    this.opts.logger?.warn({ error, rejected: this.counters.rejected }, 'identity files rejected; the last good SVID stays in use');
  }

  private publish(snapshot: IdentitySnapshot): void {
    for (const listener of this.listeners) {
      // One failing subscriber must neither stop the others nor escape from a file-watch callback.
      try {
        listener(snapshot);
      } catch (err) {
        this.opts.logger?.error({ err: (err as Error).message }, 'an SVID change listener failed');
      }
    }
  }

  private logLoaded(msg: string): void {
    const svid = this.snapshot!.svid;
    this.opts.logger?.info({ certFile: this.files.certFile, spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString() }, msg);
  }

  /**
   * Watches the directories, not the files: writers rename new files over the old ones (a new inode) and
   * Kubernetes Secret volumes swap a `..data` symlink, neither of which a watch on the file itself would see.
   */
  private watchDirectories(): void {
    const directories = new Map<string, Set<string>>();
    for (const file of Object.values(this.files)) {
      const directory = dirname(resolve(file));
      directories.set(directory, (directories.get(directory) ?? new Set()).add(basename(file)));
    }
    for (const [directory, names] of directories) {
      try {
        const watcher = watch(directory, { persistent: false }, (_event, filename) => {
          if (isWatchedFileEvent(filename, names)) this.scheduleReload();
        });
        watcher.on('error', (err) => this.opts.logger?.warn({ directory, err: err.message }, 'identity file watch failed; reload with SIGHUP'));
        this.watchers.push(watcher);
      } catch (err) {
        this.opts.logger?.warn({ directory, err: (err as Error).message }, 'cannot watch the identity files; reload with SIGHUP');
      }
    }
  }

  private scheduleReload(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload(), this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }
}

async function readSvidFiles(files: SvidFiles): Promise<{ contents: SvidFileContents; hash: string }> {
  const [cert, key, bundle] = await Promise.all([
    readNamed(files.certFile, 'certificate'),
    readNamed(files.keyFile, 'private key'),
    readNamed(files.bundleFile, 'trust bundle'),
  ]);
  const hash = createHash('sha256');
  for (const content of [cert, key, bundle]) hash.update(`${content.length}:`).update(content);
  return {
    contents: { certPem: cert.toString('utf8'), keyPem: key.toString('utf8'), bundlePem: bundle.toString('utf8') },
    hash: hash.digest('hex'),
  };
}

async function readNamed(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new Error(`${file}: cannot read the ${what}: ${reason}`);
  }
}

function parseCertificates(pem: string): ParseResult<X509Certificate[]> {
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

function parsePrivateKey(pem: string): ParseResult<KeyObject> {
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

function validityError(cert: X509Certificate, now: Date): string | undefined {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now.getTime() > notAfter.getTime()) return `expired at ${notAfter.toISOString()}`;
  if (now.getTime() + CLOCK_SKEW_MS < notBefore.getTime()) return `is not valid until ${notBefore.toISOString()}`;
  return undefined;
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

function publicKeyDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
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

import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { validateTrustDomain } from '../spiffe/id.js';
import { derToPem, pemToDerList } from '../spiffe/x509-svid.js';
import { advance, bundleRoots, caStateSchema, startRotation, type CaState } from './ca-state.js';
import { withFileLock } from './file-lock.js';
import { generateCaKey, keyMatches, privateKeyToPem, readPrivateKey } from './keys.js';
import { createRootCertificate } from './root-cert.js';
import { DEFAULT_MAX_SVID_TTL_SECONDS, DEFAULT_SVID_TTL_SECONDS } from './svid-profile.js';

// The CA directory: the one place CA state lives, shared by every meshward process that uses it (servers and
// the offline commands). Every file is written atomically (temp file, fsync, rename); keys are mode 0600. Changes
// that span files (init, a rotation step, a root promotion) and loads that read several files happen under the
// directory's lock, so no process sees a key of one root beside the certificate of another, or writes a bundle.pem
// computed from a ca.json that has changed since. Derived files (bundle.pem) are rewritten from ca.json on every
// load, so a crash between two writes heals on the next start.

export const CA_FILES = {
  state: 'ca.json',
  root: 'root.pem',
  rootKey: 'root.key',
  nextRoot: 'next-root.pem',
  nextRootKey: 'next-root.key',
  bundle: 'bundle.pem',
  tokenSecret: 'token.key',
  /** Appended to under the directory's lock only (used-tokens.ts). */
  usedTokens: 'used-tokens.jsonl',
  /**
   * The hash-chained record of every issuance and refusal (shared-audit-log.ts): the one record of what was
   * issued (serial, SPIFFE ID, notAfter, how the caller authenticated). CA directories made before it may still
   * hold an issued.jsonl; nothing reads or writes it any more.
   */
  audit: 'audit.log',
} as const;

export interface CaMaterial {
  dir: string;
  state: CaState;
  /** The certificate that signs SVIDs (DER). */
  signingCert: Buffer;
  /** Certificates sent after each leaf: an imported CA's own certificate and those above it; none for a meshward root. */
  chain: Buffer[];
  privateKey: KeyObject;
  /** Trust bundle, PEM per root. */
  bundle: string[];
  tokenSecret: Uint8Array;
}

export interface InitOptions {
  dir: string;
  trustDomain: string;
  ttlDays?: number;
  maxSvidTtlSeconds?: number;
  defaultSvidTtlSeconds?: number;
  force?: boolean;
  passphrase?: string;
  importFrom?: { certFile: string; keyFile: string; bundleFile?: string };
  now?: Date;
}

const path = (dir: string, name: keyof typeof CA_FILES) => join(dir, CA_FILES[name]);
const writeSecret = (file: string, data: string) => writeFileAtomic(file, data, { mode: 0o600 });
const writePublic = (file: string, data: string) => writeFileAtomic(file, data, { mode: 0o644 });

export async function initCa(opts: InitOptions): Promise<CaMaterial> {
  const tdError = validateTrustDomain(opts.trustDomain);
  if (tdError) throw new Error(`--trust-domain "${opts.trustDomain}": ${tdError}`);
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  return withCaLock(opts.dir, async () => {
    if (existsSync(path(opts.dir, 'state')) && !opts.force) {
      throw new Error(`${opts.dir} already holds a CA; pass --force to replace it (every SVID it issued stops being trusted)`);
    }
    const maxTtl = opts.maxSvidTtlSeconds ?? DEFAULT_MAX_SVID_TTL_SECONDS;
    const state: CaState = {
      version: 1,
      trustDomain: opts.trustDomain,
      maxSvidTtlSeconds: maxTtl,
      defaultSvidTtlSeconds: Math.min(opts.defaultSvidTtlSeconds ?? DEFAULT_SVID_TTL_SECONDS, maxTtl),
      rootTtlDays: opts.ttlDays ?? 365,
      imported: opts.importFrom !== undefined,
    };
    if (opts.importFrom) {
      const imported = await importSigningCa(opts.importFrom, opts.passphrase);
      state.importedAnchors = imported.anchors;
      await writeSecret(path(opts.dir, 'rootKey'), privateKeyToPem(imported.key, opts.passphrase));
      await writePublic(path(opts.dir, 'root'), imported.chainPem);
    } else {
      const key = generateCaKey();
      const cert = await createRootCertificate({ privateKey: key, trustDomain: opts.trustDomain, ttlDays: state.rootTtlDays, ...(opts.now ? { now: opts.now } : {}) });
      await writeSecret(path(opts.dir, 'rootKey'), privateKeyToPem(key, opts.passphrase));
      await writePublic(path(opts.dir, 'root'), derToPem(cert));
    }
    await writeSecret(path(opts.dir, 'tokenSecret'), randomBytes(32).toString('base64url'));
    for (const stale of ['nextRoot', 'nextRootKey', 'usedTokens'] as const) {
      if (existsSync(path(opts.dir, stale))) await rename(path(opts.dir, stale), `${path(opts.dir, stale)}.replaced-${Date.now()}`);
    }
    await writeSecret(path(opts.dir, 'state'), `${JSON.stringify(state, null, 2)}\n`);
    return readMaterial(opts.dir, opts.passphrase);
  });
}

/** Loads the CA, finishing a root promotion a crash may have interrupted and refreshing bundle.pem. */
export function loadCa(dir: string, passphrase?: string): Promise<CaMaterial> {
  return withCaLock(dir, () => readMaterial(dir, passphrase));
}

/** loadCa's work, for a caller that holds the directory's lock. */
async function readMaterial(dir: string, passphrase?: string): Promise<CaMaterial> {
  const state = await readState(dir);
  if (state.rotation?.stage === 'activated') await promoteNextRoot(dir);
  const rootPem = await readFile(path(dir, 'root'), 'utf8');
  const certs = pemToDerList(rootPem);
  if (certs.length === 0) throw new Error(`${path(dir, 'root')} holds no certificate`);
  const privateKey = readPrivateKey(path(dir, 'rootKey'), passphrase);
  if (!keyMatches(privateKey, new X509Certificate(certs[0]!).publicKey)) {
    throw new Error(`${path(dir, 'rootKey')} does not belong to the certificate in ${path(dir, 'root')}`);
  }
  const nextRootPem =
    state.rotation?.stage === 'propagating' ? await readFile(path(dir, 'nextRoot'), 'utf8').catch(() => undefined) : undefined;
  const bundle = bundleRoots(state, derToPem(certs[0]!), nextRootPem);
  const bundlePem = bundle.join('');
  if ((await readFile(path(dir, 'bundle'), 'utf8').catch(() => '')) !== bundlePem) await writePublic(path(dir, 'bundle'), bundlePem);
  return { dir, state, signingCert: certs[0]!, chain: state.imported ? certs : [], privateKey, bundle, tokenSecret: await readTokenSecret(dir) };
}

/** What minting a join token takes, read together: the trust domain and the token secret (no CA key, so no passphrase). */
export function readTokenMinting(dir: string): Promise<{ trustDomain: string; secret: Uint8Array }> {
  return withCaLock(dir, async () => ({ trustDomain: (await readState(dir)).trustDomain, secret: await readTokenSecret(dir) }));
}

async function readTokenSecret(dir: string): Promise<Buffer> {
  return Buffer.from((await readFile(path(dir, 'tokenSecret'), 'utf8')).trim(), 'base64url');
}

export async function readState(dir: string): Promise<CaState> {
  let text: string;
  try {
    text = await readFile(path(dir, 'state'), 'utf8');
  } catch {
    throw notACaDirectory(dir);
  }
  const parsed = caStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path(dir, 'state')} is damaged: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The modification time of ca.json, so a serving CA can notice changes made by other commands cheaply. */
export async function stateVersion(dir: string): Promise<number> {
  return (await stat(path(dir, 'state'))).mtimeMs;
}

/** Runs `fn` holding the directory's lock, so two meshward processes never interleave a read-modify-write. */
export async function withCaLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  if (!existsSync(dir)) throw notACaDirectory(dir);
  return withFileLock(path(dir, 'state'), fn);
}

function notACaDirectory(dir: string): Error {
  return new Error(`${dir} is not a meshward CA directory (no ${CA_FILES.state}); create one with \`meshward ca init\``);
}

export interface RotationStarted {
  activateAt: Date;
  nextRootSerial: string;
}

export async function rotateCa(dir: string, opts: { propagationDelaySeconds?: number; passphrase?: string; now?: Date }): Promise<RotationStarted> {
  return withCaLock(dir, async () => {
    const now = opts.now ?? new Date();
    const state = await readState(dir);
    if (state.imported) throw new Error('this CA signs with an imported certificate: rotate it upstream and run `meshward ca init --import-cert ... --force`');
    if (state.rotation) {
      const next = state.rotation.stage === 'propagating' ? `activates at ${state.rotation.activateAt}` : `old root retires at ${state.rotation.retireAt}`;
      throw new Error(`a root rotation is already in progress (stage ${state.rotation.stage}; ${next})`);
    }
    const key = generateCaKey();
    const cert = await createRootCertificate({ privateKey: key, trustDomain: state.trustDomain, ttlDays: state.rootTtlDays, now });
    await writeSecret(path(dir, 'nextRootKey'), privateKeyToPem(key, opts.passphrase));
    await writePublic(path(dir, 'nextRoot'), derToPem(cert));
    const next = startRotation(state, now, opts.propagationDelaySeconds ?? state.maxSvidTtlSeconds);
    await writeSecret(path(dir, 'state'), `${JSON.stringify(next, null, 2)}\n`);
    await readMaterial(dir, opts.passphrase); // refreshes bundle.pem with both roots
    const activateAt = next.rotation?.stage === 'propagating' ? next.rotation.activateAt : now.toISOString();
    return { activateAt: new Date(activateAt), nextRootSerial: new X509Certificate(cert).serialNumber };
  });
}

/** Applies whatever rotation step is due. Returns true when the CA's material changed. */
export async function advanceCa(dir: string, now = new Date()): Promise<boolean> {
  const quick = await readState(dir);
  if (!quick.rotation) return false;
  const currentRoot = async () => derToPem(pemToDerList(await readFile(path(dir, 'root'), 'utf8'))[0]!);
  if (advance(quick, now, '').kind === 'none') return false;
  return withCaLock(dir, async () => {
    const state = await readState(dir);
    const step = advance(state, now, await currentRoot());
    if (step.kind === 'none') return false;
    await writeSecret(path(dir, 'state'), `${JSON.stringify(step.state, null, 2)}\n`);
    if (step.kind === 'activate') await promoteNextRoot(dir);
    return true;
  });
}

/** next-root.* → root.*; each rename is atomic and the pair is idempotent, so an interrupted promotion resumes. */
async function promoteNextRoot(dir: string): Promise<void> {
  if (existsSync(path(dir, 'nextRootKey'))) await rename(path(dir, 'nextRootKey'), path(dir, 'rootKey'));
  if (existsSync(path(dir, 'nextRoot'))) await rename(path(dir, 'nextRoot'), path(dir, 'root'));
}

export function describeState(state: CaState): string {
  const r = state.rotation;
  if (!r) return 'no rotation in progress';
  if (r.stage === 'propagating') return `rotation: new root published, signing with it from ${r.activateAt}`;
  return `rotation: signing with the new root since ${r.activatedAt}; the old root leaves the bundle at ${r.retireAt}`;
}

async function importSigningCa(
  from: { certFile: string; keyFile: string; bundleFile?: string },
  passphrase?: string,
): Promise<{ key: KeyObject; chainPem: string; anchors: string[] }> {
  const chain = pemToDerList(await readFile(from.certFile, 'utf8')).map((der) => new X509Certificate(der));
  if (chain.length === 0) throw new Error(`--import-cert ${from.certFile}: no certificate found`);
  const signing = chain[0]!;
  if (!signing.ca) throw new Error(`--import-cert ${from.certFile}: the first certificate is not a CA (basicConstraints CA:TRUE is required)`);
  const key = readPrivateKey(from.keyFile, passphrase);
  if (!keyMatches(key, signing.publicKey)) throw new Error(`--import-key ${from.keyFile} does not belong to the certificate in ${from.certFile}`);
  const bundleCerts = from.bundleFile ? pemToDerList(await readFile(from.bundleFile, 'utf8')).map((d) => new X509Certificate(d)) : [];
  const selfSigned = chain.filter((c) => c.checkIssued(c));
  const anchors = bundleCerts.length > 0 ? bundleCerts : selfSigned;
  if (anchors.length === 0) throw new Error(`--import-cert ${from.certFile} has no root certificate: append the root to it or pass --import-bundle`);
  // The chain must lead from the signing certificate to an anchor, or no peer could ever verify an SVID.
  let cursor = signing;
  for (let hops = 0; ; hops++) {
    const anchor = anchors.find((a) => cursor.checkIssued(a) && cursor.verify(a.publicKey));
    if (anchor) break;
    const parent = chain.find((c) => c !== cursor && cursor.checkIssued(c) && cursor.verify(c.publicKey));
    if (!parent || hops > 8) throw new Error(`--import-cert ${from.certFile} does not chain to the trust anchors`);
    cursor = parent;
  }
  // root.pem: the signing certificate, then the intermediates above it (peers get the roots from the bundle).
  const sent = [signing, ...chain.slice(1).filter((c) => !c.checkIssued(c))];
  return {
    key,
    chainPem: sent.map((c) => derToPem(Buffer.from(c.raw))).join(''),
    anchors: anchors.map((c) => derToPem(Buffer.from(c.raw))),
  };
}


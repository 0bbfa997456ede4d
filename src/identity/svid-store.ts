import { access, chmod, constants, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { derToPem, pemToDerList, type ParseResult } from '../spiffe/index.js';
import { checkSvidFiles } from './file-svid-source.js';
import type { IdentitySnapshot } from './svid-source.js';

// The state directory of an SVID from the CA: the SVID issued last, its key and the bundle, kept so that a restart
// within the SVID's life renews over mTLS instead of spending a new join token (as SPIRE's agent keeps its SVID).
// Each file is replaced atomically (temp file, fsync, rename), the key and the directory readable by this user
// only. A set torn by a crash between two files does not hold together (the key is not the certificate's) and is
// not used.

const FILES = { cert: 'svid.pem', key: 'svid.key', bundle: 'bundle.pem' } as const;

export interface StoredSvidExpectation {
  spiffeId: string;
  trustDomain: string;
  /** The roots the config trusts the CA with; the kept bundle (newer roots the CA sent since) is trusted too. */
  bundlePem: string;
}

export class SvidStore {
  private saving: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string) {}

  /**
   * Makes the directory (0700) if it is not there and checks that it can be written: done before a token is spent,
   * so that an SVID that could not be kept is never bought.
   */
  static async open(dir: string): Promise<SvidStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await access(dir, constants.W_OK);
    return new SvidStore(dir);
  }

  /**
   * The kept SVID when it can serve now: same SPIFFE ID and trust domain, in date, its key, chaining to a trusted
   * root. `undefined` when nothing is kept; otherwise the reason it cannot be used.
   */
  async load(expected: StoredSvidExpectation, now: Date): Promise<ParseResult<IdentitySnapshot> | undefined> {
    const path = (name: keyof typeof FILES) => join(this.dir, FILES[name]);
    const read = (name: keyof typeof FILES) => readFile(path(name), 'utf8');
    let certPem: string;
    let keyPem: string;
    let keptBundlePem: string;
    try {
      [certPem, keyPem, keptBundlePem] = await Promise.all([read('cert'), read('key'), read('bundle')]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return { ok: false, error: (err as Error).message };
    }
    let bundlePem: string;
    try {
      bundlePem = uniqueCertificates(keptBundlePem, expected.bundlePem);
    } catch (err) {
      return { ok: false, error: `${path('bundle')}: ${(err as Error).message}` };
    }
    const files = { certFile: path('cert'), keyFile: path('key'), bundleFile: `${path('bundle')} or the configured bundle` };
    const checked = checkSvidFiles(files, { certPem, keyPem, bundlePem }, expected.trustDomain, now);
    if (!checked.ok) return checked;
    if (checked.value.svid.spiffeId !== expected.spiffeId) {
      return { ok: false, error: `${files.certFile} is ${checked.value.svid.spiffeId}, not ${expected.spiffeId}` };
    }
    // The bundle in force is the one the CA sent last, as it sent it: its bundle stream then finds nothing new.
    return { ok: true, value: { svid: checked.value.svid, bundlePem: keptBundlePem } };
  }

  /** Keeps `snapshot`; saves run one after another. The key goes first: see the note on torn sets above. */
  save(snapshot: IdentitySnapshot): Promise<void> {
    const write = (name: keyof typeof FILES, data: string) => writeFileAtomic(join(this.dir, FILES[name]), data, { mode: 0o600 });
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        await write('key', snapshot.svid.keyPem);
        await write('cert', snapshot.svid.certChainPem);
        await write('bundle', snapshot.bundlePem);
      });
    return this.saving;
  }
}

/** The certificates of several PEM bundles, each once. */
function uniqueCertificates(...bundles: string[]): string {
  const byContent = new Map(bundles.flatMap((pem) => pemToDerList(pem)).map((der) => [der.toString('base64'), der]));
  return [...byContent.values()].map(derToPem).join('');
}

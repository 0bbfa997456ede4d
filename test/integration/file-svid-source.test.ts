// The files SVID source against certificates meshward did not make (openssl) and ones it did (the CLI's CA), with
// the ways real writers replace files: rename over (cert-manager), cert before key, and Kubernetes' `..data` swap.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkSvidFiles, FileSvidSource, type IdentitySnapshot, type SvidFiles } from '../../src/identity/index.js';
import { initCaDir, TD } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { CA_EXTENSIONS, OpensslPki, SVID_EXTENSIONS, type CertAndKey } from '../helpers/openssl-pki.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
interface FileSet {
  cert: string;
  key: string;
  bundle: string;
}

const read = (file: string) => readFileSync(file, 'utf8');

/** How cert-manager and most tools replace a file: write a temporary file beside it, then rename it over. */
function replaceFile(target: string, content: string, mode = 0o644): void {
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, target);
}

function writeSet(files: SvidFiles, set: FileSet): void {
  replaceFile(files.certFile, read(set.cert));
  replaceFile(files.keyFile, read(set.key), 0o600);
  replaceFile(files.bundleFile, read(set.bundle));
}

/** Resolves with the next published snapshot; subscribe before making the change. */
function nextChange(source: FileSvidSource, timeoutMs = 10_000): Promise<IdentitySnapshot> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no SVID change within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = source.onChange((snapshot) => {
      clearTimeout(timer);
      unsubscribe();
      resolvePromise(snapshot);
    });
  });
}

async function eventually(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function captureLogger() {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(line) }), lines };
}

describe('FileSvidSource', () => {
  const pkiDir = tempDir('meshward-file-svid-pki-');
  const pki = new OpensslPki(pkiDir.dir);
  const workDirs: (() => void)[] = [];
  const sources: FileSvidSource[] = [];
  let root: CertAndKey;
  let web: CertAndKey;

  beforeAll(() => {
    root = pki.root('root');
    web = pki.svid('web', root);
  });

  afterEach(async () => {
    for (const source of sources.splice(0)) await source.close();
    for (const cleanup of workDirs.splice(0)) cleanup();
  });

  afterAll(pkiDir.cleanup);

  /** A workload directory holding svid.pem, svid.key (0600) and bundle.pem. */
  function workload(set: FileSet): SvidFiles {
    const { dir, cleanup } = tempDir('meshward-file-svid-');
    workDirs.push(cleanup);
    const files = { certFile: join(dir, 'svid.pem'), keyFile: join(dir, 'svid.key'), bundleFile: join(dir, 'bundle.pem') };
    writeSet(files, set);
    return files;
  }

  async function start(files: SvidFiles, logger = pino({ level: 'silent' })): Promise<FileSvidSource> {
    const source = await FileSvidSource.start({ ...files, trustDomain: TD, logger, debounceMs: 50 });
    sources.push(source);
    return source;
  }

  describe('loading', () => {
    it('loads an openssl-made SVID with a PKCS#8 key and fills the snapshot from the certificate', async () => {
      const source = await start(workload({ ...web, bundle: root.cert }));
      const { svid, bundlePem } = source.current()!;
      expect(svid.spiffeId).toBe(WEB);
      expect(svid.serial).toBe(pki.run('x509', '-in', web.cert, '-noout', '-serial').trim().replace('serial=', ''));
      const date = (flag: string) => new Date(pki.run('x509', '-in', web.cert, '-noout', flag).split('=')[1]!.trim());
      expect(svid.notBefore).toEqual(date('-startdate'));
      expect(svid.notAfter).toEqual(date('-enddate'));
      expect(svid.certChainPem).toBe(read(web.cert));
      expect(svid.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(bundlePem).toBe(read(root.cert));
      expect(source.stats()).toEqual({ reloads: 0, rejected: 0 });
    });

    it('loads one file that holds the chain and then the key, given as both certificate and key', async () => {
      const files = workload({ ...web, bundle: root.cert });
      writeFileSync(files.certFile, `${read(web.cert)}${read(web.key)}`);
      const source = await start({ ...files, keyFile: files.certFile });
      expect(source.current()!.svid.certChainPem).toBe(read(web.cert));
    });

    it('loads a SEC1 "EC PRIVATE KEY" and hands it on as the same key in PKCS#8', async () => {
      const sec1 = pki.svid('web-sec1', root, `URI:${WEB}`, 'sec1');
      expect(read(sec1.key)).toContain('-----BEGIN EC PRIVATE KEY-----');
      const source = await start(workload({ ...sec1, bundle: root.cert }));
      const { keyPem } = source.current()!.svid;
      expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(createPublicKey(keyPem).export({ type: 'spki', format: 'pem' })).toBe(pki.run('pkey', '-in', sec1.key, '-pubout'));
    });

    it('follows intermediates in the cert file to the root in the bundle, and sends no root in the chain', async () => {
      const intermediateKey = pki.key('intermediate');
      const intermediate = { cert: pki.cert('intermediate', root, intermediateKey, CA_EXTENSIONS), key: intermediateKey };
      const leaf = pki.svid('web-via-intermediate', intermediate);
      const certFile = join(pkiDir.dir, 'web-via-intermediate-full.pem');
      writeFileSync(certFile, read(leaf.cert) + read(intermediate.cert) + read(root.cert));
      const source = await start(workload({ cert: certFile, key: leaf.key, bundle: root.cert }));
      expect(source.current()!.svid.certChainPem).toBe(read(leaf.cert) + read(intermediate.cert));
    });

    it('loads an SVID from meshward’s own CA (ca init, ca issue)', async () => {
      const { dir, cleanup } = tempDir('meshward-file-svid-ca-');
      workDirs.push(cleanup);
      const caDir = await initCaDir(dir);
      const issued = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', join(dir, 'web')]);
      expect(issued.code, issued.stderr).toBe(0);
      const source = await start(workload({ cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: join(caDir, 'bundle.pem') }));
      expect(source.current()!.svid.spiffeId).toBe(WEB);
    });
  });

  describe('refusing invalid files at start, naming the file and the reason', () => {
    let cases: { name: string; set: () => FileSet; file: keyof SvidFiles; reason: string | RegExp }[];
    beforeAll(() => {
      const otherRoot = pki.root('other-root');
      const otherDomainRoot = pki.root('other-domain-root', 'other.org');
      const encryptedKey = join(pkiDir.dir, 'web-encrypted.key');
      pki.run('pkcs8', '-topk8', '-in', web.key, '-v2', 'aes-256-cbc', '-passout', 'pass:secret', '-out', encryptedKey);
      chmodSync(encryptedKey, 0o600);
      const halfWritten = join(pkiDir.dir, 'web-half.pem');
      writeFileSync(halfWritten, read(web.cert).slice(0, 300));
      const empty = join(pkiDir.dir, 'empty.pem');
      writeFileSync(empty, '');
      // Cut while the second root was being written: only the start of its BEGIN line made it.
      const cutBundle = join(pkiDir.dir, 'cut-bundle.pem');
      writeFileSync(cutBundle, `${read(root.cert)}-----BEGIN CERT`);
      const cutChain = join(pkiDir.dir, 'cut-chain.pem');
      writeFileSync(cutChain, `${read(web.cert)}---`);
      const expiredKey = pki.key('web-expired');
      const expired = pki.cert('web-expired', root, expiredKey, [`subjectAltName=URI:${WEB}`, ...SVID_EXTENSIONS], { start: '20200101000000Z', end: '20200102000000Z' });
      cases = [
        { name: 'a key from another certificate', set: () => ({ cert: web.cert, key: pki.key('stray'), bundle: root.cert }), file: 'keyFile', reason: 'the private key does not match the certificate in' },
        { name: 'no URI SAN', set: () => ({ ...pki.svid('dns-only', root, 'DNS:web.local'), bundle: root.cert }), file: 'certFile', reason: 'an SVID must have exactly one URI SAN; this certificate has 0' },
        { name: 'two URI SANs', set: () => ({ ...pki.svid('two-uris', root, `URI:${WEB},URI:spiffe://${TD}/ns/default/sa/db`), bundle: root.cert }), file: 'certFile', reason: 'an SVID must have exactly one URI SAN; this certificate has 2' },
        { name: 'the trust domain ID', set: () => ({ ...pki.svid('trust-domain-id', root, `URI:spiffe://${TD}`), bundle: root.cert }), file: 'certFile', reason: 'is a trust domain ID, not a workload\'s' },
        { name: 'another trust domain', set: () => ({ ...pki.svid('other-domain', otherDomainRoot, 'URI:spiffe://other.org/ns/default/sa/web'), bundle: otherDomainRoot.cert }), file: 'certFile', reason: 'is not in the trust domain example.org' },
        { name: 'a bundle that does not hold its root', set: () => ({ ...web, bundle: otherRoot.cert }), file: 'certFile', reason: /the certificate does not chain to a root in .*bundle\.pem$/ },
        { name: 'an expired certificate', set: () => ({ cert: expired, key: expiredKey, bundle: root.cert }), file: 'certFile', reason: 'the certificate expired at 2020-01-02T00:00:00.000Z' },
        { name: 'a half-written certificate', set: () => ({ cert: halfWritten, key: web.key, bundle: root.cert }), file: 'certFile', reason: 'the file ends inside a PEM certificate' },
        { name: 'an encrypted key', set: () => ({ cert: web.cert, key: encryptedKey, bundle: root.cert }), file: 'keyFile', reason: 'the private key is encrypted' },
        { name: 'a key file that holds no key', set: () => ({ cert: web.cert, key: web.cert, bundle: root.cert }), file: 'keyFile', reason: 'holds no private key that can be parsed' },
        { name: 'an empty bundle', set: () => ({ ...web, bundle: empty }), file: 'bundleFile', reason: 'the file holds no PEM certificate' },
        { name: 'an empty certificate file', set: () => ({ cert: empty, key: web.key, bundle: root.cert }), file: 'certFile', reason: 'the file holds no PEM certificate' },
        { name: 'an empty key file', set: () => ({ cert: web.cert, key: empty, bundle: root.cert }), file: 'keyFile', reason: 'holds no private key that can be parsed' },
        { name: 'a bundle cut inside the BEGIN line of its second root', set: () => ({ ...web, bundle: cutBundle }), file: 'bundleFile', reason: 'the file ends inside a PEM certificate' },
        { name: 'a chain cut after its leaf', set: () => ({ cert: cutChain, key: web.key, bundle: root.cert }), file: 'certFile', reason: 'the file ends inside a PEM certificate' },
      ];
    });

    it('refuses each broken set with an error that starts with the file to fix', async () => {
      for (const c of cases) {
        const files = workload(c.set());
        const error = await FileSvidSource.start({ ...files, trustDomain: TD }).then(
          () => new Error(`${c.name}: started`),
          (err: Error) => err,
        );
        expect(error.message, c.name).toMatch(new RegExp(`^${files[c.file]}: `));
        expect(error.message, c.name).toMatch(c.reason);
        expect(error.message, c.name).not.toMatch(/PRIVATE KEY-----/);
      }
    });

    it('names a missing file', async () => {
      const files = workload({ ...web, bundle: root.cert });
      rmSync(files.keyFile);
      await expect(FileSvidSource.start({ ...files, trustDomain: TD })).rejects.toThrow(`${files.keyFile}: cannot read the private key: file not found`);
    });
  });

  describe('checkSvidFiles (the pure check)', () => {
    const names = { certFile: 'svid.pem', keyFile: 'svid.key', bundleFile: 'bundle.pem' };
    const contents = () => ({ certPem: read(web.cert), keyPem: read(web.key), bundlePem: read(root.cert) });

    it('says which file is wrong in the words of the brief', () => {
      const stray = read(pki.key('stray-pure'));
      expect(checkSvidFiles(names, { ...contents(), keyPem: stray }, TD, new Date())).toEqual({
        ok: false,
        error: 'svid.key: the private key does not match the certificate in svid.pem',
      });
    });

    it('refuses a certificate outside its validity, leaving a minute for an issuer’s clock running ahead', () => {
      const leaf = checkSvidFiles(names, contents(), TD, new Date());
      if (!leaf.ok) throw new Error(leaf.error);
      const { notBefore, notAfter } = leaf.value.svid;
      const at = (ms: number) => checkSvidFiles(names, contents(), TD, new Date(ms));
      expect(at(notAfter.getTime() + 1000)).toEqual({ ok: false, error: `svid.pem: the certificate expired at ${notAfter.toISOString()}` });
      expect(at(notBefore.getTime() - 30_000).ok).toBe(true);
      expect(at(notBefore.getTime() - 120_000)).toEqual({ ok: false, error: `svid.pem: the certificate is not valid until ${notBefore.toISOString()}` });
    });
  });

  describe('reloading', () => {
    it('publishes a new SVID renamed over the old files, as cert-manager writes them', async () => {
      const { dir, cleanup } = tempDir('meshward-file-svid-ca-');
      workDirs.push(cleanup);
      const caDir = await initCaDir(dir);
      const issue = async (name: string) => {
        const r = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', join(dir, name)]);
        expect(r.code, r.stderr).toBe(0);
        return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), bundle: join(caDir, 'bundle.pem') };
      };
      const files = workload(await issue('first'));
      const source = await start(files);
      const before = source.current()!.svid.serial;
      const next = await issue('second');

      const change = nextChange(source);
      writeSet(files, next);
      const snapshot = await change;
      expect(snapshot.svid.serial).not.toBe(before);
      expect(snapshot.svid.certChainPem).toBe(read(next.cert));
      expect(source.current()).toBe(snapshot);
      expect(source.stats()).toEqual({ reloads: 1, rejected: 0 });
    });

    it('refuses a cert written before its key, keeps the old SVID, and picks up the key written after', async () => {
      const { logger, lines } = captureLogger();
      const files = workload({ ...web, bundle: root.cert });
      const source = await start(files, logger);
      const before = source.current()!;
      const next = pki.svid('web-next', root);

      replaceFile(files.certFile, read(next.cert));
      await eventually('the mismatch to be refused', () => source.stats().rejected === 1);
      expect(source.current()).toBe(before);
      expect(lines.join('')).toContain(`${files.keyFile}: the private key does not match the certificate in ${files.certFile}`);

      const change = nextChange(source);
      replaceFile(files.keyFile, read(next.key), 0o600);
      expect((await change).svid.certChainPem).toBe(read(next.cert));
      expect(source.stats()).toEqual({ reloads: 1, rejected: 1 });
      expect(lines.join('')).not.toContain('PRIVATE KEY');
    });

    it('refuses a half-written certificate and a set from another trust domain, then takes the next good set', async () => {
      const { logger, lines } = captureLogger();
      const files = workload({ ...web, bundle: root.cert });
      const source = await start(files, logger);
      const before = source.current()!;

      const next = pki.svid('web-after-refusals', root);
      writeFileSync(files.certFile, read(next.cert).slice(0, 200));
      await eventually('the half-written file to be refused', () => source.stats().rejected >= 1);

      const otherDomainRoot = pki.root('reload-other-domain', 'other.org');
      writeSet(files, { ...pki.svid('reload-other-domain-web', otherDomainRoot, 'URI:spiffe://other.org/ns/default/sa/web'), bundle: otherDomainRoot.cert });
      await eventually('the other trust domain to be refused', () => lines.join('').includes('is not in the trust domain example.org'));
      expect(source.current()).toBe(before);

      const change = nextChange(source);
      writeSet(files, { ...next, bundle: root.cert });
      expect((await change).svid.serial).toBe(new X509Certificate(read(next.cert)).serialNumber);
      expect(source.stats().reloads).toBe(1);
    });

    it('refuses each file emptied or cut short, keeps the last good SVID, and takes the next good set', async () => {
      const files = workload({ ...web, bundle: root.cert });
      const source = await start(files);
      const before = source.current()!;
      const next = pki.svid('web-after-truncations', root);
      const writes: [string, string][] = [
        [files.certFile, ''],
        [files.keyFile, ''],
        [files.bundleFile, ''],
        [files.bundleFile, `${read(root.cert)}-----BEGIN CERTIFICATE--`],
        [files.certFile, read(next.cert).slice(0, 100)],
      ];
      for (const [i, [file, content]] of writes.entries()) {
        writeSet(files, { ...web, bundle: root.cert });
        writeFileSync(file, content);
        await eventually(`refusal ${i + 1}`, () => source.stats().rejected === i + 1);
        expect(source.current()).toBe(before);
      }
      const change = nextChange(source);
      writeSet(files, { ...next, bundle: root.cert });
      expect((await change).svid.serial).toBe(new X509Certificate(read(next.cert)).serialNumber);
      expect(source.stats()).toEqual({ reloads: 1, rejected: writes.length });
    });

    it('reloads when a Kubernetes Secret volume swaps its ..data symlink', async () => {
      const { dir, cleanup } = tempDir('meshward-file-svid-k8s-');
      workDirs.push(cleanup);
      // The kubelet's layout: files in a timestamped directory, `..data` pointing at it, each name a link through `..data`.
      const writeVersion = (version: string, set: FileSet) => {
        mkdirSync(join(dir, version));
        writeFileSync(join(dir, version, 'svid.pem'), read(set.cert));
        writeFileSync(join(dir, version, 'svid.key'), read(set.key), { mode: 0o600 });
        writeFileSync(join(dir, version, 'bundle.pem'), read(set.bundle));
      };
      writeVersion('..2026_01_01_00_00_00.1', { ...web, bundle: root.cert });
      symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
      for (const name of ['svid.pem', 'svid.key', 'bundle.pem']) symlinkSync(join('..data', name), join(dir, name));
      const source = await start({ certFile: join(dir, 'svid.pem'), keyFile: join(dir, 'svid.key'), bundleFile: join(dir, 'bundle.pem') });

      const next = pki.svid('web-k8s', root);
      const change = nextChange(source);
      writeVersion('..2026_01_02_00_00_00.2', { ...next, bundle: root.cert });
      symlinkSync('..2026_01_02_00_00_00.2', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });
      expect((await change).svid.certChainPem).toBe(read(next.cert));
    });

    it('publishes nothing when a reload finds the same content, however the files were rewritten', async () => {
      const files = workload({ ...web, bundle: root.cert });
      const source = await start(files);
      let published = 0;
      const unsubscribe = source.onChange(() => (published += 1));
      await source.reload();
      writeSet(files, { ...web, bundle: root.cert });
      writeFileSync(files.bundleFile, `${read(root.cert)}\n`);
      await source.reload();
      unsubscribe();
      expect(published).toBe(0);
      expect(source.stats()).toEqual({ reloads: 0, rejected: 0 });
    });
  });
});

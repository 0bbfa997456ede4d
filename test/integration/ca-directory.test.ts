import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { advanceCa, initCa, loadCa, readState, rotateCa, type CaMaterial } from '../../src/ca/index.js';
import { withCaLock } from '../../src/ca/ca-directory.js';
import { generateCaKey, privateKeyToPem } from '../../src/ca/keys.js';
import { createRootCertificate } from '../../src/ca/root-cert.js';
import { derToPem } from '../../src/spiffe/x509-svid.js';
import { tempDir } from '../helpers/cli.js';

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

describe('CA directory: rotation steps persist and resume', () => {
  it('carries a rotation through every stage by time, whoever loads the directory', async () => {
    const { dir, cleanup } = tempDir();
    const t0 = new Date();
    await initCa({ dir, trustDomain: 'example.org', maxSvidTtlSeconds: 600 });
    const oldRoot = readFileSync(join(dir, 'root.pem'), 'utf8');
    await rotateCa(dir, { propagationDelaySeconds: 60, now: t0 });
    const nextRoot = readFileSync(join(dir, 'next-root.pem'), 'utf8');
    expect((await loadCa(dir)).bundle.map(serialOf)).toEqual([serialOf(oldRoot), serialOf(nextRoot)]);

    expect(await advanceCa(dir, new Date(t0.getTime() + 59_000))).toBe(false);
    expect(await advanceCa(dir, new Date(t0.getTime() + 60_000))).toBe(true);
    const activated = await loadCa(dir);
    expect(serialOf(readFileSync(join(dir, 'root.pem'), 'utf8'))).toBe(serialOf(nextRoot));
    expect(activated.bundle.map(serialOf)).toEqual([serialOf(nextRoot), serialOf(oldRoot)]);
    expect(existsSync(join(dir, 'next-root.key'))).toBe(false);

    const retireAt = Date.parse((activated.state.rotation as { retireAt: string }).retireAt);
    expect(await advanceCa(dir, new Date(retireAt))).toBe(true);
    const done = await loadCa(dir);
    expect(done.state.rotation).toBeUndefined();
    expect(done.bundle.map(serialOf)).toEqual([serialOf(nextRoot)]);
    expect(readFileSync(join(dir, 'bundle.pem'), 'utf8')).toBe(nextRoot);
    cleanup();
  });

  it('finishes a promotion that a crash interrupted between the key and certificate renames', async () => {
    const { dir, cleanup } = tempDir();
    await initCa({ dir, trustDomain: 'example.org', maxSvidTtlSeconds: 600 });
    const t0 = new Date();
    const oldRoot = readFileSync(join(dir, 'root.pem'), 'utf8');
    await rotateCa(dir, { propagationDelaySeconds: 1, now: t0 });
    const nextRoot = readFileSync(join(dir, 'next-root.pem'), 'utf8');
    // Simulate the crash: state says "activated" and the key moved, but next-root.pem is still there.
    const snapshot = join(dir, 'snapshot.pem');
    copyFileSync(join(dir, 'next-root.pem'), snapshot);
    expect(await advanceCa(dir, new Date(t0.getTime() + 1000))).toBe(true);
    copyFileSync(snapshot, join(dir, 'next-root.pem'));
    writeFileSync(join(dir, 'root.pem'), oldRoot);

    const healed = await loadCa(dir);
    expect(serialOf(readFileSync(join(dir, 'root.pem'), 'utf8'))).toBe(serialOf(nextRoot));
    expect(existsSync(join(dir, 'next-root.pem'))).toBe(false);
    expect((await readState(dir)).rotation?.stage).toBe('activated');
    expect(healed.signingCert.equals(new X509Certificate(nextRoot).raw)).toBe(true);
    cleanup();
  });

  it('refuses a key that does not belong to root.pem', async () => {
    const a = tempDir();
    const b = tempDir();
    await initCa({ dir: a.dir, trustDomain: 'example.org' });
    await initCa({ dir: b.dir, trustDomain: 'example.org' });
    copyFileSync(join(b.dir, 'root.key'), join(a.dir, 'root.key'));
    await expect(loadCa(a.dir)).rejects.toThrow(/root.key does not belong to the certificate/);
    a.cleanup();
    b.cleanup();
  });
});

describe('CA directory: every process sees one truth', () => {
  it('loads only between changes made under the lock: never a root key beside another root\'s certificate', async () => {
    const { dir, cleanup } = tempDir();
    await initCa({ dir, trustDomain: 'example.org' });
    const key = generateCaKey();
    const cert = await createRootCertificate({ privateKey: key, trustDomain: 'example.org', ttlDays: 1 });
    let loading: Promise<CaMaterial | Error> | undefined;
    await withCaLock(dir, async () => {
      // The first half of a change that spans two files: the key is written, its certificate not yet.
      writeFileSync(join(dir, 'root.key'), privateKeyToPem(key), { mode: 0o600 });
      loading = loadCa(dir).catch((err: Error) => err);
      // A load that ignores the lock reads the half-made change meanwhile and fails; one that waits for the lock
      // cannot settle before the change is complete, so there is no event to wait for: the bound is what gives an
      // unlocked load its chance to go wrong.
      await Promise.race([loading, sleep(500)]);
      writeFileSync(join(dir, 'root.pem'), derToPem(cert));
    });
    const loaded = await loading!;
    expect(loaded).not.toBeInstanceOf(Error);
    expect((loaded as CaMaterial).signingCert.equals(cert)).toBe(true);
    cleanup();
  });
});

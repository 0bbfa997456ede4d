import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentitySnapshot } from '../../src/identity/index.js';
import { SvidStore } from '../../src/identity/svid-store.js';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { makeMesh, ORDERS_ID, WEB_ID, type Mesh } from '../helpers/sidecar.js';

// Issue 13, item 10: the state directory that lets a restarted sidecar go on without a new join token. Real SVIDs
// from `meshward ca issue`, a real directory; a kept SVID is used only when it can serve now, as the identity the
// config asks for.

async function snapshotOf(mesh: Mesh, name: string, spiffeId: string): Promise<IdentitySnapshot> {
  const files = await mesh.issue(name, spiffeId);
  const certChainPem = readFileSync(files.cert, 'utf8');
  const leaf = new X509Certificate(certChainPem);
  return {
    svid: { spiffeId, certChainPem, keyPem: readFileSync(files.key, 'utf8'), serial: leaf.serialNumber, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) },
    bundlePem: readFileSync(mesh.bundle, 'utf8'),
  };
}

describe('SvidStore', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let web: IdentitySnapshot;
  let bundlePem: string;
  beforeAll(async () => {
    mesh = await makeMesh(dir);
    web = await snapshotOf(mesh, 'web', WEB_ID);
    bundlePem = readFileSync(mesh.bundle, 'utf8');
  });
  afterAll(cleanup);

  const expectWeb = () => ({ spiffeId: WEB_ID, trustDomain: TD, bundlePem });

  it('makes a private directory, keeps nothing at first, and gives back what it kept (key 0600)', async () => {
    const store = await SvidStore.open(join(dir, 'state', 'web'));
    expect(statSync(store.dir).mode & 0o777).toBe(0o700);
    expect(await store.load(expectWeb(), new Date())).toBeUndefined();
    await store.save(web);
    for (const file of ['svid.key', 'svid.pem', 'bundle.pem']) expect(statSync(join(store.dir, file)).mode & 0o777).toBe(0o600);
    const kept = await store.load(expectWeb(), new Date());
    expect(kept?.ok).toBe(true);
    expect(kept?.ok && kept.value.svid).toMatchObject({ spiffeId: WEB_ID, serial: web.svid.serial, keyPem: web.svid.keyPem });
  });

  it('does not use a kept SVID for another identity, past its expiry, or torn from its key', async () => {
    const store = await SvidStore.open(join(dir, 'state', 'web'));
    const forOrders = await store.load({ ...expectWeb(), spiffeId: ORDERS_ID }, new Date());
    expect(forOrders).toEqual({ ok: false, error: `${join(store.dir, 'svid.pem')} is ${WEB_ID}, not ${ORDERS_ID}` });

    const later = new Date(web.svid.notAfter.getTime() + 120_000);
    const expired = await store.load(expectWeb(), later);
    expect(expired?.ok).toBe(false);
    expect(!expired?.ok && expired?.error).toMatch(/expired/);

    const orders = await snapshotOf(mesh, 'orders', ORDERS_ID);
    writeFileSync(join(store.dir, 'svid.key'), orders.svid.keyPem);
    const torn = await store.load(expectWeb(), new Date());
    expect(torn?.ok).toBe(false);
    expect(!torn?.ok && torn?.error).toMatch(/does not match/);
  });

  it('refuses a directory it cannot make', async () => {
    writeFileSync(join(dir, 'a-file'), '');
    await expect(SvidStore.open(join(dir, 'a-file', 'state'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

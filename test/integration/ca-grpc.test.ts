import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCsr, mintJoinToken } from '../../src/ca/index.js';
import { frameMessage } from '../../src/grpc/index.js';
import { x509 } from '../../src/spiffe/x509.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { auditRecords, bundleWithRoots, initCaDir, serveCa, TD, token, type ServingCa } from '../helpers/ca.js';
import { OpensslPki } from '../helpers/openssl-pki.js';
import { csrWith, ecKey } from '../helpers/pki.js';
import { rawGrpcCall } from '../helpers/raw-grpc.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;

async function expectStatus(p: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  expect(err, 'the call should have been refused').toBeDefined();
  expect(grpc.status[err!.code]).toBe(grpc.status[code]);
  expect(err!.details).toMatch(message);
}

describe('meshward ca serve (gRPC over TLS)', () => {
  const { dir, cleanup } = tempDir();
  let caDir: string;
  let ca: ServingCa;

  beforeAll(async () => {
    caDir = await initCaDir(dir, ['--max-ttl', '2h']);
    ca = await serveCa(caDir);
  });
  afterAll(async () => {
    expect(await ca.stop()).toBe(0);
    cleanup();
  });

  it('bootstraps with a join token: an SVID openssl verifies, with the token-bound ID', async () => {
    const key = ecKey();
    const res = await ca.client().sign({ csr: await makeCsr(key), joinToken: await token(caDir, WEB), ttlSeconds: 600 });
    expect(res.spiffeId).toBe(WEB);
    expect(res.certChain).toHaveLength(1);
    const leaf = new X509Certificate(res.certChain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${WEB}`);
    expect(leaf.publicKey.equals((await import('node:crypto')).createPublicKey(key))).toBe(true);
    writeFileSync(join(dir, 'web.pem'), res.certChainPem);
    expect(execFileSync('openssl', ['verify', '-CAfile', join(caDir, 'bundle.pem'), join(dir, 'web.pem')]).toString()).toContain(': OK');
    expect(res.notAfterUnix - Date.now() / 1000).toBeGreaterThan(590);
    expect(res.notAfterUnix - Date.now() / 1000).toBeLessThanOrEqual(600);
    expect(res.bundle.pem).toBe(readFileSync(join(caDir, 'bundle.pem'), 'utf8'));
    // Recorded, with how the caller was authenticated and when the SVID expires.
    expect(auditRecords(join(caDir, 'audit.log'))).toContainEqual(
      expect.objectContaining({ decision: 'issued', serial: res.serial, spiffeId: WEB, method: 'token', notAfter: new Date(res.notAfterUnix * 1000).toISOString() }),
    );
  });

  it('refuses a token used twice, also after a CA restart', async () => {
    const t = await token(caDir, WEB);
    await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t });
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t }), grpc.status.UNAUTHENTICATED, /already used/);
    expect(await ca.stop()).toBe(0);
    ca = await serveCa(caDir);
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t }), grpc.status.UNAUTHENTICATED, /already used/);
  });

  it('lets only one of many concurrent uses of a token through, on a pool of signing workers', async () => {
    // A pool whatever the machine: by default a CA on one or two CPUs signs on its main thread.
    const pooled = await serveCa(caDir, {}, ['--workers', '2']);
    try {
      const t = await token(caDir, WEB);
      const auditLog = join(caDir, 'audit.log');
      const before = auditRecords(auditLog).length;
      const clients = Array.from({ length: 8 }, () => pooled.client());
      const csrs = await Promise.all(clients.map(() => makeCsr(ecKey())));
      const results = await Promise.allSettled(clients.map((c, i) => c.sign({ csr: csrs[i]!, joinToken: t })));
      const granted = results.filter((r) => r.status === 'fulfilled');
      expect(granted).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as grpc.ServiceError).details).toMatch(/already used/);
      const serial = (granted[0] as PromiseFulfilledResult<{ serial: string }>).value.serial;
      // One record per attempt, each written before its caller heard back: one issuance, seven refusals.
      const records = auditRecords(auditLog).slice(before);
      expect(records.filter((r) => r.decision === 'issued')).toEqual([expect.objectContaining({ serial, method: 'token', spiffeId: WEB })]);
      expect(records.filter((r) => r.decision === 'refused' && /already used/.test(String(r.message)))).toHaveLength(7);
    } finally {
      expect(await pooled.stop()).toBe(0);
    }
  });

  it('signs on the main thread with --workers 0, and refuses a worker count that is not a whole number', async () => {
    const inline = await serveCa(caDir, {}, ['--workers', '0']);
    try {
      const res = await inline.client().sign({ csr: await makeCsr(ecKey()), joinToken: await token(caDir, ORDERS) });
      expect(res.spiffeId).toBe(ORDERS);
    } finally {
      expect(await inline.stop()).toBe(0);
    }
    const bad = await runCli(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--workers', 'two']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--workers: "two" is not a whole number from 0 to 256');
  });

  it('refuses expired, forged and foreign tokens, and callers with no credential', async () => {
    const secret = Buffer.from(readFileSync(join(caDir, 'token.key'), 'utf8').trim(), 'base64url');
    const expired = await mintJoinToken(secret, { trustDomain: TD, spiffeId: WEB, ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: expired }), grpc.status.UNAUTHENTICATED, /expired/);
    const forged = await mintJoinToken(Buffer.alloc(32, 7), { trustDomain: TD, spiffeId: WEB, ttlSeconds: 60 });
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: forged }), grpc.status.UNAUTHENTICATED, /not issued by this CA/);
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: 'not-a-jwt' }), grpc.status.UNAUTHENTICATED, /malformed/);
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()) }), grpc.status.UNAUTHENTICATED, /join token.*mTLS/);
  });

  it('grants a token only the ID it is bound to', async () => {
    await expectStatus(
      ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await token(caDir, WEB), spiffeId: ORDERS }),
      grpc.status.PERMISSION_DENIED,
      /bound to another ID/,
    );
    const csr = await csrWith(ecKey(), [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ORDERS }])]);
    await expectStatus(ca.client().sign({ csr, joinToken: await token(caDir, WEB) }), grpc.status.PERMISSION_DENIED, /CSR asks for/);
  });

  it('renews over mTLS for the same ID and no other', async () => {
    const key = ecKey();
    const first = await ca.client().sign({ csr: await makeCsr(key), joinToken: await token(caDir, WEB) });
    const identity = { certChainPem: first.certChainPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string };
    const newKey = ecKey();
    const renewed = await ca.client(identity).sign({ csr: await makeCsr(newKey) });
    expect(renewed.spiffeId).toBe(WEB);
    expect(renewed.serial).not.toBe(first.serial);
    await expectStatus(ca.client(identity).sign({ csr: await makeCsr(newKey), spiffeId: ORDERS }), grpc.status.PERMISSION_DENIED, /renewal keeps the identity/);
    expect(auditRecords(join(caDir, 'audit.log'))).toContainEqual(
      expect.objectContaining({ decision: 'issued', serial: renewed.serial, spiffeId: WEB, principal: WEB, method: 'renewal' }),
    );
  });

  it('does not accept a certificate from another CA as a renewal credential', async () => {
    const other = tempDir();
    const otherCa = await initCaDir(other.dir);
    const r = await runCli(['ca', 'issue', '--dir', otherCa, '--spiffe-id', WEB, '--out', join(other.dir, 'w')]);
    expect(r.code).toBe(0);
    const identity = { certChainPem: readFileSync(join(other.dir, 'w.pem'), 'utf8'), keyPem: readFileSync(join(other.dir, 'w.key'), 'utf8') };
    await expectStatus(ca.client(identity).sign({ csr: await makeCsr(ecKey()) }), grpc.status.UNAUTHENTICATED, /join token.*mTLS/);
    other.cleanup();
  });

  it('refuses bad CSRs with INVALID_ARGUMENT and keeps serving', async () => {
    const t = await token(caDir, WEB);
    await expectStatus(ca.client().sign({ csr: 'garbage', joinToken: t }), grpc.status.INVALID_ARGUMENT, /neither DER nor a PEM/);
    await expectStatus(ca.client().sign({ csr: Buffer.alloc(17 * 1024, 0x30), joinToken: t }), grpc.status.INVALID_ARGUMENT, /limit is 16384/);
    const caCsr = await csrWith(ecKey(), [new x509.BasicConstraintsExtension(true, undefined, true)]);
    await expectStatus(ca.client().sign({ csr: caCsr, joinToken: t }), grpc.status.INVALID_ARGUMENT, /CA:TRUE/);
    await expectStatus(
      ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t, spiffeId: 'spiffe://evil.org/x' }),
      grpc.status.INVALID_ARGUMENT,
      /trust domain "evil.org"/,
    );
    // None of these used the token up: the refusals came before it was spent.
    const ok = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t });
    expect(ok.spiffeId).toBe(WEB);
  });

  it('clamps a TTL over the maximum and says so', async () => {
    const res = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await token(caDir, WEB), ttlSeconds: 48 * 3600 });
    expect(res.notice).toContain('exceeds the CA maximum 2h');
    expect(res.notAfterUnix - Date.now() / 1000).toBeLessThanOrEqual(7200);
  });

  it('never issues for the trust domain ID: asked for, bound to a token, or presented for renewal', async () => {
    const bare = `spiffe://${TD}`;
    await expectStatus(
      ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await token(caDir, WEB), spiffeId: bare }),
      grpc.status.INVALID_ARGUMENT,
      /"spiffe:\/\/example\.org" is a trust domain ID, not a workload's: an SVID's SPIFFE ID must have a path/,
    );
    // A token bound to it, as a CA without this check would have minted it (mintJoinToken now refuses to).
    const secret = Buffer.from(readFileSync(join(caDir, 'token.key'), 'utf8').trim(), 'base64url');
    const now = Math.floor(Date.now() / 1000);
    const bareToken = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(bare).setAudience('meshward-ca').setSubject(bare).setJti('bare-td').setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
    await expectStatus(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: bareToken }), grpc.status.UNAUTHENTICATED, /bound to an ID no SVID may carry: .*trust domain ID/);
    await expect(mintJoinToken(secret, { trustDomain: TD, spiffeId: bare, ttlSeconds: 60 })).rejects.toThrow(/trust domain ID/);
    // A certificate for it that chains to this CA's root (made with openssl and the root key) is no renewal credential.
    const pki = new OpensslPki(dir);
    const forged = pki.svid('bare-td', { cert: join(caDir, 'root.pem'), key: join(caDir, 'root.key') }, `URI:${bare}`);
    const identity = { certChainPem: readFileSync(forged.cert, 'utf8'), keyPem: readFileSync(forged.key, 'utf8') };
    await expectStatus(ca.client(identity).sign({ csr: await makeCsr(ecKey()) }), grpc.status.UNAUTHENTICATED, /not a usable SVID: .*trust domain ID/);
  });

  it("refuses a body that is not the method's request with INVALID_ARGUMENT and the reason, on every method, and keeps serving", async () => {
    const session = connect(`https://${ca.address}`, { ca: readFileSync(join(caDir, 'bundle.pem')), servername: 'localhost' });
    try {
      const method = (name: string) => `/meshward.ca.v1.CertificateAuthority/${name}`;
      // A tag with wire type 7, which protobuf does not have.
      const undecodable = frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
      for (const name of ['Sign', 'GetBundle', 'WatchBundle']) {
        const r = await rawGrpcCall(session, method(name), undecodable);
        expect([name, r.grpcStatus]).toEqual([name, grpc.status.INVALID_ARGUMENT]);
        expect(r.grpcMessage, name).toMatch(/does not decode.*: .+/);
        expect(await rawGrpcCall(session, method(name), undecodable.subarray(0, 6))).toMatchObject({ grpcStatus: grpc.status.INVALID_ARGUMENT, grpcMessage: 'request ended inside a message' });
        expect(await rawGrpcCall(session, method(name), Buffer.alloc(0))).toMatchObject({ grpcStatus: grpc.status.INVALID_ARGUMENT, grpcMessage: 'request has no message' });
      }
      expect((await rawGrpcCall(session, method('Sign'), undecodable)).grpcMessage).toMatch(/^the request does not decode as a SignRequest: /);
      const bundle = await rawGrpcCall(session, method('GetBundle'), frameMessage(Buffer.alloc(0)));
      expect(bundle.grpcStatus).toBe(grpc.status.OK);
      expect(bundle.body.length).toBeGreaterThan(5);
    } finally {
      session.close();
    }
  });

  it('serves the trust bundle, and streams a rotation step to watchers', async () => {
    const client = ca.client();
    const bundle = await client.getBundle();
    expect(bundle.trustDomain).toBe(TD);
    expect(bundle.x509Authorities).toHaveLength(1);
    const twoRoots = bundleWithRoots(client, 2);
    const r = await runCli(['ca', 'rotate', '--dir', caDir, '--propagation-delay', '1h']);
    expect(r.code, r.stderr).toBe(0);
    expect(await twoRoots).toEqual([1, 2]);
  });
});

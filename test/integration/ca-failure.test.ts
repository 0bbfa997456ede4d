import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../../src/ca/client.js';
import { makeCsr } from '../../src/ca/csr-make.js';
import { describeCaFailure } from '../../src/identity/ca-failure.js';
import { initCaDir, serveCa, TD, type ServingCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { makeMesh, ORDERS_ID, WEB_ID, type Mesh } from '../helpers/sidecar.js';

// Issue 13, item 11: what a sidecar says when it cannot get an SVID. Every failure here is a real one (a closed
// port, a name that does not resolve, a server that is not the CA, one that never answers, a CA that refuses),
// met by the real gRPC client; the reason must be plain words, and only the CA's refusals are final.

async function listening(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('describeCaFailure: real failures, plain reasons', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let ca: ServingCa;
  let csr: string;
  const servers: net.Server[] = [];
  const clients: CaClient[] = [];
  beforeAll(async () => {
    mesh = await makeMesh(dir);
    ca = await serveCa(mesh.caDir);
    csr = await makeCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of servers) s.close();
    await ca?.stop();
    cleanup();
  });

  /** The failure of one join-token Sign call to `address`, trusting `bundlePem` (the mesh's bundle by default). */
  async function failureAt(address: string, options: { bundlePem?: string; joinToken?: string; deadlineMs?: number } = {}) {
    const client = new CaClient({ address, trustDomain: TD, bundlePem: options.bundlePem ?? readFileSync(mesh.bundle, 'utf8') });
    clients.push(client);
    const err = await client.sign({ csr, joinToken: options.joinToken ?? 'x', spiffeId: WEB_ID, deadlineMs: options.deadlineMs ?? 5_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    return describeCaFailure(err);
  }

  it('a closed port: connection refused, worth retrying', async () => {
    const closed = net.createServer();
    const address = await listening(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await failureAt(address)).toEqual({ transient: true, reason: 'connection refused' });
  });

  it('a host name that does not resolve: DNS, worth retrying', async () => {
    expect(await failureAt('no-such-host.invalid:8443')).toEqual({ transient: true, reason: 'DNS: the host name does not resolve' });
  });

  it('a server that is not the CA, or one this bundle does not trust: a TLS failure naming why', async () => {
    const impostorSvid = await mesh.issue('impostor', ORDERS_ID);
    const impostor = tls.createServer({ cert: readFileSync(impostorSvid.cert), key: readFileSync(impostorSvid.key), ALPNProtocols: ['h2'] });
    servers.push(impostor);
    const notTheCa = await failureAt(await listening(impostor));
    expect(notTheCa.transient).toBe(true);
    expect(notTheCa.reason).toBe(`TLS failure: the server is ${ORDERS_ID}, not the CA (spiffe://${TD}/meshward/ca)`);

    const otherCaDir = await initCaDir(join(dir, 'other'));
    const untrusted = await failureAt(ca.address, { bundlePem: readFileSync(join(otherCaDir, 'bundle.pem'), 'utf8') });
    expect(untrusted.transient).toBe(true);
    expect(untrusted.reason).toMatch(/^TLS failure: .*certificate/);
  });

  it('a server that never answers: no answer in time, worth retrying', async () => {
    const silent = net.createServer(() => undefined);
    servers.push(silent);
    expect(await failureAt(await listening(silent), { deadlineMs: 300 })).toEqual({ transient: true, reason: 'no answer in time' });
  });

  it('the CA refusing the token: final, in the CA\'s own words', async () => {
    expect(await failureAt(ca.address, { joinToken: 'not-a-join-token' })).toEqual({
      transient: false,
      reason: 'the join token is not valid: it is malformed or was not issued by this CA',
    });
  });

  it('an error that is not from gRPC at all: final, its message as it is', () => {
    expect(describeCaFailure(new Error('the CSR could not be made'))).toEqual({ transient: false, reason: 'the CSR could not be made' });
  });
});

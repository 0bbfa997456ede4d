// `meshward sidecar` as a SPIFFE Workload API endpoint (issue 16, part 2): a real sidecar child process whose
// identity comes from a real `meshward ca serve`, called by a client built from the specification's workload.proto.
// The Workload API and SDS share one socket here, as on SPIRE's agent. The SVID lives 6 s (a renewal every 3 s or
// so); the root rotation comes last, since it changes the bundle every later test would see.
import { createPublicKey, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { status, type Client } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemToDerList } from '../../src/spiffe/index.js';
import { serveCa, TD, token, type ServingCa } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeMesh, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';
import {
  derCertificates,
  fetchJwtBundles,
  fetchX509Bundles,
  fetchX509Svid,
  jwtCallError,
  securityHeader,
  workloadApiClient,
  type MessageStream,
} from '../helpers/workload-api-client.js';
import { fetchSecrets, firstRequest, sdsClient } from '../conformance/sds-client.js';

describe('Workload API: the sidecar as a SPIFFE Workload API endpoint', () => {
  const { dir, cleanup } = tempDir();
  const socket = join(dir, 'agent.sock');
  let mesh: Mesh;
  let ca: ServingCa;
  let web: RunningSidecar;
  let client: Client;
  const streams: Array<MessageStream<unknown>> = [];
  const opened = <T>(stream: MessageStream<T>) => {
    streams.push(stream as MessageStream<unknown>);
    return stream;
  };

  beforeAll(async () => {
    mesh = await makeMesh(dir);
    ca = await serveCa(mesh.caDir);
    web = await runSidecar(
      dir,
      'web',
      {
        trustDomain: TD,
        identity: { ca: { address: ca.address, bundle: mesh.bundle, spiffeId: WEB_ID, token: 'env:MESHWARD_JOIN_TOKEN', ttl: '6s' } },
        workloadApi: { listen: `unix://${socket}` },
        sds: { listen: `unix:${socket}` },
        admin: { listen: '127.0.0.1:0' },
        drainTimeout: '1s',
      },
      { MESHWARD_JOIN_TOKEN: await token(mesh.caDir, WEB_ID) },
    );
    client = workloadApiClient(`unix:${socket}`);
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    client?.close();
    await web?.stop();
    await ca?.stop();
    cleanup();
  }, 30_000);

  it('serves on a Unix socket only its owner can open (0600), shared with SDS', async () => {
    const stat = statSync(socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    const sds = sdsClient(`unix:${socket}`);
    try {
      expect((await fetchSecrets(sds, firstRequest(['default']))).resources.map((s) => s.name)).toEqual(['default']);
    } finally {
      sds.close();
    }
  });

  it('refuses every call without the security header `workload.spiffe.io: true` (InvalidArgument), as the specification says', async () => {
    const refusals = await Promise.all([
      opened(fetchX509Svid(client, securityHeader(null))).next().catch((e: unknown) => e),
      opened(fetchX509Bundles(client, securityHeader('false'))).next().catch((e: unknown) => e),
      opened(fetchJwtBundles(client, securityHeader(null))).next().catch((e: unknown) => e),
      jwtCallError(client, 'FetchJWTSVID', { audience: ['orders'] }, securityHeader(null)),
    ]);
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/security header missing/) });
    }
  });

  it('FetchX509SVID: the SVID as DER (leaf first), its key as PKCS#8 DER, the bundle as DER; nothing federated', async () => {
    const response = await opened(fetchX509Svid(client)).next();
    expect(response.svids).toHaveLength(1);
    const [svid] = response.svids;
    expect(svid!.spiffe_id).toBe(WEB_ID);
    const [leaf] = derCertificates(svid!.x509_svid);
    expect(leaf!.subjectAltName).toBe(`URI:${WEB_ID}`);
    const root = new X509Certificate(readFileSync(mesh.bundle));
    expect(leaf!.verify(root.publicKey)).toBe(true);
    const key = createPrivateKey({ key: svid!.x509_svid_key, format: 'der', type: 'pkcs8' });
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' })).toEqual(leaf!.publicKey.export({ type: 'spki', format: 'der' }));
    expect(derCertificates(svid!.bundle).map((c) => c.raw)).toEqual(pemToDerList(readFileSync(mesh.bundle, 'utf8')));
    expect(response.federated_bundles).toEqual({});
    expect(response.crl).toEqual([]);
  });

  it('FetchX509SVID: a renewal is pushed on the open stream', async () => {
    const stream = opened(fetchX509Svid(client));
    const first = derCertificates((await stream.next()).svids[0]!.x509_svid)[0]!;
    const renewed = derCertificates((await stream.next()).svids[0]!.x509_svid)[0]!;
    expect(renewed.serialNumber).not.toBe(first.serialNumber);
    expect(renewed.subjectAltName).toBe(`URI:${WEB_ID}`);
  });

  it('JWT-SVID calls answer Unimplemented, saying what to use instead', async () => {
    const errors = await Promise.all([
      jwtCallError(client, 'FetchJWTSVID', { audience: ['orders'] }),
      jwtCallError(client, 'ValidateJWTSVID', { audience: 'orders', svid: 'a.b.c' }),
      opened(fetchJwtBundles(client)).next().catch((e: unknown) => e),
    ]);
    for (const error of errors) expect(error).toMatchObject({ code: status.UNIMPLEMENTED, details: expect.stringMatching(/FetchX509SVID/) });
  });

  it('FetchX509Bundles: the trust domain\'s bundle keyed by its SPIFFE ID, sent again when a root is added (not on a renewal)', async () => {
    const stream = opened(fetchX509Bundles(client));
    const first = await stream.next();
    expect(Object.keys(first.bundles)).toEqual([`spiffe://${TD}`]);
    expect(derCertificates(first.bundles[`spiffe://${TD}`]!)).toHaveLength(1);

    // A renewal (seen on an SVID stream on the same connection, so after anything sent before it) changes no bundle.
    const svids = opened(fetchX509Svid(client));
    await svids.next();
    await svids.next();
    const rotate = await runCli(['ca', 'rotate', '--dir', mesh.caDir]);
    expect(rotate.code, rotate.stderr).toBe(0);
    const next = await stream.next();
    const roots = derCertificates(next.bundles[`spiffe://${TD}`]!);
    expect(roots).toHaveLength(2);
    expect(roots.map((c) => c.raw)).toEqual(expect.arrayContaining(pemToDerList(readFileSync(mesh.bundle, 'utf8')).slice(0, 1)));
  });
});

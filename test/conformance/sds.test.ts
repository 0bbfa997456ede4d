// `meshward sidecar` as Envoy's secret discovery service (issue 16, part 1): a real sidecar child process whose
// identity comes from a real `meshward ca serve`, serving SDS on a Unix socket, called by a client built from
// Envoy's official protos (sds-client.ts). The SVID lives 6 s, so a renewal comes every 3 s or so: the tests that
// need an identity change wait for the next one on their open stream.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { status, type Client } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemToDerList } from '../../src/spiffe/index.js';
import { auditRecords, serveCa, TD, token, type ServingCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { ALLOW_WEB_GET_ORDERS, makeMesh, ORDERS_ID, outputContaining, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';
import { bytesOf, deltaSecrets, fetchSecrets, firstRequest, SECRET_TYPE_URL, SecretsStream, sdsClient, type DiscoveryResponse, type Secret } from './sds-client.js';

const leafOf = (chainPem: string) => new X509Certificate(pemToDerList(chainPem)[0]!);

describe('SDS: the sidecar as Envoy\'s SecretDiscoveryService', () => {
  const { dir, cleanup } = tempDir();
  const socket = join(dir, 'sds.sock');
  let mesh: Mesh;
  let ca: ServingCa;
  let web: RunningSidecar;
  let orders: RunningSidecar;
  let app: http.Server;
  let client: Client;
  const streams: SecretsStream[] = [];
  const open = () => {
    const stream = new SecretsStream(client);
    streams.push(stream);
    return stream;
  };

  beforeAll(async () => {
    mesh = await makeMesh(dir);
    ca = await serveCa(mesh.caDir);
    app = http.createServer((req, res) => res.end(`hello ${String(req.headers['x-forwarded-client-cert'] ?? '')}`));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const ordersSvid = await mesh.issue('orders', ORDERS_ID);
    writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    // Only an identity to serve: no inbound, no outbound listener. One after the other, so that whichever started is
    // stopped by afterAll even when the other fails to.
    web = await runSidecar(
      dir,
      'web',
      {
        trustDomain: TD,
        identity: { ca: { address: ca.address, bundle: mesh.bundle, spiffeId: WEB_ID, token: 'env:MESHWARD_JOIN_TOKEN', ttl: '6s' } },
        sds: { listen: 'unix:sds.sock' },
        admin: { listen: '127.0.0.1:0' },
        drainTimeout: '1s',
      },
      { MESHWARD_JOIN_TOKEN: await token(mesh.caDir, WEB_ID) },
    );
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, policy: join(dir, 'policy.yaml') },
      admin: { listen: '127.0.0.1:0' },
    });
    client = sdsClient(`unix:${socket}`);
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    client?.close();
    await Promise.all([web?.stop(), orders?.stop()]);
    await ca?.stop();
    app?.close();
    cleanup();
  }, 30_000);

  const byName = (response: DiscoveryResponse) => Object.fromEntries(response.resources.map((s) => [s.name, s])) as Record<string, Secret>;

  it('serves on a Unix socket only its owner can open (0600), relative to the config\'s directory', () => {
    const stat = statSync(socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(web.output()).toContain(`"sds":"unix:${socket}"`);
  });

  it('pushes `default` (the SVID the CA issued, and its key) and `ROOTCA` (the CA\'s bundle)', async () => {
    const stream = open();
    stream.send(firstRequest(['default', 'ROOTCA']));
    const response = await stream.next();
    expect(response.type_url).toBe(SECRET_TYPE_URL);
    expect(response.version_info).not.toBe('');
    expect(response.nonce).not.toBe('');
    expect(response.resources.map((s) => s.name)).toEqual(['default', 'ROOTCA']);
    const { default: svid, ROOTCA: roots } = byName(response);

    const chainPem = bytesOf(svid!.tls_certificate!.certificate_chain);
    const keyPem = bytesOf(svid!.tls_certificate!.private_key);
    const leaf = leafOf(chainPem);
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
    // Signed by the CA's root, and an SVID the CA issued to web (its audit log records each before handing it out).
    const root = new X509Certificate(readFileSync(mesh.bundle));
    expect(leaf.verify(root.publicKey)).toBe(true);
    const issued = auditRecords(join(mesh.caDir, 'audit.log')).filter((r) => r.decision === 'issued' && r.spiffeId === WEB_ID);
    expect(issued.map((r) => String(r.serial).toUpperCase())).toContain(leaf.serialNumber.toUpperCase());
    // The key is the certificate's.
    expect(spkiOfKey(keyPem)).toEqual(leaf.publicKey.export({ type: 'spki', format: 'der' }));

    const bundle = bytesOf(roots!.validation_context!.trusted_ca);
    expect(pemToDerList(bundle)).toEqual(pemToDerList(readFileSync(mesh.bundle, 'utf8')));
  });

  it('knows the SVID by its SPIFFE ID and the bundle by its trust domain, as SPIRE; leaves an unknown name out', async () => {
    const stream = open();
    stream.send(firstRequest([WEB_ID, 'nothing-by-this-name', `spiffe://${TD}`]));
    const response = await stream.next();
    expect(response.resources.map((s) => s.name)).toEqual([WEB_ID, `spiffe://${TD}`]);
    expect(byName(response)[WEB_ID]!.tls_certificate).toBeDefined();
    expect(byName(response)[`spiffe://${TD}`]!.validation_context).toBeDefined();
  });

  it('an ACK gets nothing back; the next renewal arrives on the open stream with a new version and certificate', async () => {
    const stream = open();
    stream.send(firstRequest(['default']));
    const first = await stream.next();
    stream.send({ version_info: first.version_info, response_nonce: first.nonce, resource_names: ['default'], type_url: SECRET_TYPE_URL });
    // Were the ACK answered, this would be the same version again.
    const pushed = await stream.next();
    expect(pushed.version_info).not.toBe(first.version_info);
    expect(pushed.nonce).not.toBe(first.nonce);
    const before = leafOf(bytesOf(first.resources[0]!.tls_certificate!.certificate_chain));
    const after = leafOf(bytesOf(pushed.resources[0]!.tls_certificate!.certificate_chain));
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(after.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(spkiOfKey(bytesOf(pushed.resources[0]!.tls_certificate!.private_key))).toEqual(after.publicKey.export({ type: 'spki', format: 'der' }));
  });

  it('a NACK is logged with its error and the rejected version is not sent again: the next identity is', async () => {
    const stream = open();
    stream.send(firstRequest(['default']));
    const first = await stream.next();
    stream.send({ version_info: '', response_nonce: first.nonce, resource_names: ['default'], type_url: SECRET_TYPE_URL, error_detail: { code: 3, message: 'nack-under-test: key does not load' } });
    const log = await outputContaining(web, 'nack-under-test: key does not load');
    expect(log).toMatch(/"msg":"SDS: the client rejected the secrets sent \(NACK\)[^\n]*/);
    const next = await stream.next();
    expect(next.version_info).not.toBe(first.version_info);
  });

  it('a request answering an older response is ignored, as the xDS protocol says', async () => {
    const stream = open();
    stream.send(firstRequest(['default']));
    const first = await stream.next();
    // A stale nonce with a different subscription: answered, it would bring ROOTCA at once.
    stream.send({ version_info: first.version_info, response_nonce: 'an-older-nonce', resource_names: ['ROOTCA'], type_url: SECRET_TYPE_URL });
    const next = await stream.next();
    expect(next.resources.map((s) => s.name)).toEqual(['default']);
    expect(next.version_info).not.toBe(first.version_info);
  });

  it('a changed subscription is answered at once', async () => {
    const stream = open();
    stream.send(firstRequest(['default']));
    const first = await stream.next();
    stream.send({ version_info: first.version_info, response_nonce: first.nonce, resource_names: ['default', 'ROOTCA'], type_url: SECRET_TYPE_URL });
    const next = await stream.next(2_000);
    expect(next.resources.map((s) => s.name)).toEqual(['default', 'ROOTCA']);
  });

  it('FetchSecrets answers once with the current version; DeltaSecrets and other resource types are refused', async () => {
    const fetched = await fetchSecrets(client, firstRequest(['ROOTCA']));
    expect(fetched.resources.map((s) => s.name)).toEqual(['ROOTCA']);
    expect(fetched.version_info).toMatch(/^[0-9a-f]{16}$/);

    const delta = await deltaSecrets(client);
    expect(delta.code).toBe(status.UNIMPLEMENTED);
    expect(delta.details).toMatch(/StreamSecrets/);

    const wrongType = open();
    wrongType.send({ ...firstRequest(['default']), type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    await expect(wrongType.next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('the pushed secrets make a TLS context that completes mutual TLS with a meshward sidecar, which sees the SVID\'s SPIFFE ID', async () => {
    const stream = open();
    stream.send(firstRequest(['default', 'ROOTCA']));
    const { default: svid, ROOTCA: roots } = byName(await stream.next());
    const [host, port] = orders.inbound!.split(':');
    const answer = await new Promise<{ status: number; body: string; server: string }>((resolve, reject) => {
      const req = https.request(
        {
          host,
          port: Number(port),
          path: '/api/orders/1',
          agent: false,
          cert: bytesOf(svid!.tls_certificate!.certificate_chain),
          key: bytesOf(svid!.tls_certificate!.private_key),
          ca: bytesOf(roots!.validation_context!.trusted_ca),
          // The server proves a SPIFFE ID, not a host name: checked below.
          checkServerIdentity: () => undefined,
        },
        (res) => {
          const server = (res.socket as TLSSocket).getPeerCertificate().subjectaltname ?? '';
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, server }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(answer.server).toContain(`URI:${ORDERS_ID}`);
    // The policy lets web's SPIFFE ID through, and the app is told who called.
    expect(answer.status).toBe(200);
    expect(answer.body).toContain(`URI=${WEB_ID}`);
  });
});

/** The SPKI DER of a private key's public half, to compare with a certificate's. */
function spkiOfKey(keyPem: string): Buffer {
  return createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
}

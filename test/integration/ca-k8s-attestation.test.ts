// `meshward ca serve --k8s-issuer`: pods bootstrap with their projected service-account token instead of a join
// token. A local cluster issuer (jose keys, OIDC discovery and JWKS on a real HTTP server) stands in for the
// API server.
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCsr } from '../../src/ca/index.js';
import { tempDir } from '../helpers/cli.js';
import { initCaDir, serveCa, TD, token as joinToken, type ServingCa } from '../helpers/ca.js';
import { ecKey } from '../helpers/pki.js';

describe('CA bootstrap with Kubernetes service-account tokens', () => {
  const { dir, cleanup } = tempDir();
  let issuerServer: Server;
  let issuer: string;
  let clusterKey: CryptoKey;
  let caDir: string;
  let ca: ServingCa;
  const now = Math.floor(Date.now() / 1000);
  const claims = (overrides: JWTPayload = {}): JWTPayload => ({
    iss: issuer,
    sub: 'system:serviceaccount:shop:web',
    aud: ['meshward-ca'],
    iat: now,
    exp: now + 600,
    'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web', uid: 'a9d8e7f6-3333-4c7a-9f5a-000000000003' } },
    ...overrides,
  });
  const saToken = (c: JWTPayload = claims()) => new SignJWT(c).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(clusterKey);

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    clusterKey = pair.privateKey;
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    issuerServer = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/openid/v1/jwks` }));
      if (req.url === '/openid/v1/jwks') return res.end(JSON.stringify(jwks));
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
    caDir = await initCaDir(dir);
    ca = await serveCa(caDir, {}, ['--k8s-issuer', issuer]);
  });
  afterAll(async () => {
    await ca.stop();
    issuerServer.close();
    cleanup();
  });

  it('issues spiffe://TD/ns/<namespace>/sa/<name> for a valid projected token, as often as the token is valid', async () => {
    const t = await saToken();
    for (let i = 0; i < 2; i++) {
      const res = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: t });
      expect(res.spiffeId).toBe(`spiffe://${TD}/ns/shop/sa/web`);
      expect(new X509Certificate(res.certChain[0]!).subjectAltName).toBe(`URI:spiffe://${TD}/ns/shop/sa/web`);
    }
  });

  it('refuses a token for another audience, and an identity the token does not prove', async () => {
    const wrongAudience = ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await saToken(claims({ aud: ['kubernetes'] })) });
    await expect(wrongAudience).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining('meshward-ca') });
    const otherId = ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await saToken(), spiffeId: `spiffe://${TD}/ns/shop/sa/admin` });
    await expect(otherId).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining('platform token proves another identity') });
  });

  it('still accepts join tokens', async () => {
    const id = `spiffe://${TD}/ns/default/sa/batch`;
    const res = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await joinToken(caDir, id) });
    expect(res.spiffeId).toBe(id);
  });
});

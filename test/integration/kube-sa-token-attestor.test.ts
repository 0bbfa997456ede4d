// Service-account token attestation against a local cluster issuer: jose-made keys, a real HTTP server on port 0
// serving OIDC discovery and the JWKS, and tokens shaped as the API server makes them for a projected volume.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SaTokenAttestor, type Attestation } from '../../src/kube/index.js';
import { tempDir } from '../helpers/cli.js';

const tmp = tempDir('meshward-attestor-');
let server: Server;
let issuer: string;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;
let jwks: { keys: JWK[] };
const hits: { path: string; headers: IncomingHttpHeaders }[] = [];
/** What the discovery document claims as its issuer; a test may set it to another one. */
let advertisedIssuer: () => string = () => issuer;
/** When set, the issuer answers every request with this status (an outage, say). */
let failWith: number | undefined;

const NOW = Math.floor(Date.now() / 1000);

/** The claims the API server puts in a projected token for pod web-0 of service account shop/web. */
function projectedClaims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: issuer,
    sub: 'system:serviceaccount:shop:web',
    aud: ['meshward-ca'],
    iat: NOW,
    nbf: NOW,
    exp: NOW + 600,
    'kubernetes.io': {
      namespace: 'shop',
      node: { name: 'node-1', uid: 'b6c0e3e4-1111-4a5e-9d3e-000000000001' },
      pod: { name: 'web-0', uid: 'f3a1c2d4-2222-4b6f-8e4f-000000000002' },
      serviceaccount: { name: 'web', uid: 'a9d8e7f6-3333-4c7a-9f5a-000000000003' },
    },
    ...overrides,
  };
}

function token(claims: JWTPayload = projectedClaims(), key: CryptoKey = signingKey, kid = 'cluster-key-1'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
}

const attestor = (opts: Partial<Parameters<typeof SaTokenAttestor.create>[0]> = {}) =>
  SaTokenAttestor.create({ trustDomain: 'cluster.local', issuer, keys: { discovery: true }, ...opts });

function refusal(a: Attestation): string {
  if (a.ok) throw new Error(`expected a refusal, got ${a.spiffeId}`);
  return `${a.code}: ${a.reason}`;
}

beforeAll(async () => {
  const cluster = await generateKeyPair('RS256');
  signingKey = cluster.privateKey;
  jwks = { keys: [{ ...(await exportJWK(cluster.publicKey)), kid: 'cluster-key-1', alg: 'RS256', use: 'sig' }] };
  ({ privateKey: strangerKey } = await generateKeyPair('RS256'));
  server = createServer((req, res) => {
    hits.push({ path: req.url ?? '', headers: req.headers });
    if (failWith) return res.writeHead(failWith).end();
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ issuer: advertisedIssuer(), jwks_uri: `${issuer}/openid/v1/jwks`, id_token_signing_alg_values_supported: ['RS256'] }));
    }
    if (req.url === '/openid/v1/jwks') {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      return res.end(JSON.stringify(jwks));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  tmp.cleanup();
});

describe('SaTokenAttestor with OIDC discovery', () => {
  it('turns a projected token into spiffe://TD/ns/<namespace>/sa/<name>, fetching discovery and keys once', async () => {
    hits.length = 0;
    const a = await attestor();
    const results = [await a.attest(await token()), await a.attest(await token()), await a.attest(await token())];
    for (const r of results) {
      expect(r).toEqual({
        ok: true,
        spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
        namespace: 'shop',
        serviceAccount: { name: 'web', uid: 'a9d8e7f6-3333-4c7a-9f5a-000000000003' },
        pod: { name: 'web-0', uid: 'f3a1c2d4-2222-4b6f-8e4f-000000000002' },
        expiresAt: new Date((NOW + 600) * 1000),
      });
    }
    expect(hits.map((h) => h.path)).toEqual(['/.well-known/openid-configuration', '/openid/v1/jwks']);
  });

  it('refuses a token for another audience', async () => {
    const r = await (await attestor()).attest(await token(projectedClaims({ aud: ['https://kubernetes.default.svc.cluster.local'] })));
    expect(refusal(r)).toBe('unauthenticated: service-account token refused: it is not meant for meshward-ca (its audience must be "meshward-ca")');
  });

  it('refuses an expired token', async () => {
    const r = await (await attestor()).attest(await token(projectedClaims({ iat: NOW - 1200, nbf: NOW - 1200, exp: NOW - 600 })));
    expect(refusal(r)).toBe('unauthenticated: service-account token refused: it has expired');
  });

  it('refuses a token from another issuer', async () => {
    const r = await (await attestor()).attest(await token(projectedClaims({ iss: 'https://other-cluster.example' })));
    expect(refusal(r)).toBe(`unauthenticated: service-account token refused: it was not issued by the cluster issuer ${issuer}`);
  });

  it('refuses a token signed with a key the issuer does not publish, whatever its key ID', async () => {
    const a = await attestor();
    expect(refusal(await a.attest(await token(projectedClaims(), strangerKey, 'cluster-key-1')))).toBe('unauthenticated: service-account token refused: its signature does not verify');
    expect(refusal(await a.attest(await token(projectedClaims(), strangerKey, 'stranger')))).toBe('unauthenticated: service-account token refused: it is signed with a key the cluster issuer does not publish');
  });

  it('refuses tokens without the kubernetes.io claims, or with inconsistent ones', async () => {
    const a = await attestor();
    const k8s = projectedClaims()['kubernetes.io'] as Record<string, unknown>;
    const cases: [JWTPayload, RegExp][] = [
      [{ 'kubernetes.io': undefined }, /has no "kubernetes\.io" claim/],
      [{ 'kubernetes.io': { ...k8s, namespace: undefined } }, /"kubernetes\.io"\.namespace claim is missing/],
      [{ 'kubernetes.io': { ...k8s, serviceaccount: { uid: 'x' } } }, /"kubernetes\.io"\.serviceaccount\.name claim is missing/],
      [{ 'kubernetes.io': { ...k8s, pod: { name: 'web-0' } } }, /"kubernetes\.io"\.pod claim must have a name and a uid/],
      [{ sub: 'system:serviceaccount:kube-system:admin' }, /subject "system:serviceaccount:kube-system:admin" does not match its kubernetes\.io claims/],
      [{ exp: undefined }, /the "exp" claim is missing/],
    ];
    for (const [overrides, reason] of cases) {
      expect(refusal(await a.attest(await token(projectedClaims(overrides))))).toMatch(reason);
    }
  });

  it('requires a pod binding when told to', async () => {
    const unbound = projectedClaims({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web', uid: 'u' } } });
    expect((await (await attestor()).attest(await token(unbound))).ok).toBe(true);
    expect(refusal(await (await attestor({ requirePodBinding: true })).attest(await token(unbound)))).toMatch(/not bound to a pod/);
  });

  it('refuses malformed tokens and ones signed with a shared secret', async () => {
    const a = await attestor();
    expect(refusal(await a.attest('not-a-jwt'))).toBe('unauthenticated: service-account token refused: it is not a well-formed JWT');
    const hs = await new SignJWT(projectedClaims()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
    expect(refusal(await a.attest(hs))).toBe('unauthenticated: service-account token refused: it is signed with an algorithm that is not allowed');
  });

  it('says "unavailable" when the issuer cannot be reached or lies about who it is, and recovers', async () => {
    failWith = 503;
    const a = await attestor();
    expect(refusal(await a.attest(await token()))).toMatch(/^unavailable: cannot get the cluster issuer's keys: .*openid-configuration answered HTTP 503/);
    failWith = undefined;
    expect((await a.attest(await token())).ok).toBe(true);

    advertisedIssuer = () => 'https://impostor.example';
    try {
      expect(refusal(await (await attestor()).attest(await token()))).toMatch(/^unavailable: .* names the issuer "https:\/\/impostor\.example", not/);
    } finally {
      advertisedIssuer = () => issuer;
    }
  });
});

describe('SaTokenAttestor with a configured JWKS', () => {
  it('fetches a JWKS URL with a bearer token read from a file', async () => {
    const bearer = join(tmp.dir, 'ca-token');
    writeFileSync(bearer, 'the-ca-own-token\n');
    hits.length = 0;
    const a = await attestor({ keys: { jwksUrl: `${issuer}/openid/v1/jwks` }, fetch: { bearerTokenFile: bearer } });
    expect((await a.attest(await token())).ok).toBe(true);
    expect(hits.map((h) => [h.path, h.headers.authorization])).toEqual([['/openid/v1/jwks', 'Bearer the-ca-own-token']]);
  });

  it('reads a JWKS file', async () => {
    const file = join(tmp.dir, 'jwks.json');
    writeFileSync(file, JSON.stringify(jwks));
    const a = await attestor({ keys: { jwksFile: file } });
    expect(await a.attest(await token())).toMatchObject({ ok: true, spiffeId: 'spiffe://cluster.local/ns/shop/sa/web' });
    await expect(attestor({ keys: { jwksFile: join(tmp.dir, 'missing.json') } })).rejects.toThrow(/missing\.json: cannot read the JWKS: file not found/);
  });

  it('refuses a bad trust domain at creation', async () => {
    await expect(attestor({ trustDomain: 'Cluster.Local' })).rejects.toThrow('trust domain "Cluster.Local": trust domain must be lower case');
  });
});

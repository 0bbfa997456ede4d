import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { ManualClock, type AuthzRequest } from '../../src/authz/index.js';
import { loadPolicyChain, loadPolicyChainFromText, PolicyRuntime } from '../../src/filters/index.js';
import type { Logger } from '../../src/telemetry/index.js';
import { tempDir } from '../helpers/cli.js';

const ISSUER = 'https://idp.example.org';
const NOW = Date.UTC(2030, 0, 1);

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

function sign(key: Key, claims: JWTPayload = {}, options: { audience?: string; issuer?: string; expiresInSeconds?: number } = {}) {
  const iat = Math.floor(NOW / 1000);
  return new SignJWT({ sub: 'alice', scope: 'profile orders.read', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? 'orders')
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 300))
    .sign(key.privateKey);
}

const RULES = `
rules:
  - name: readers
    action: allow
    when: [{ key: "jwt.claims.scope", values: ["orders.read"] }]
  - name: health
    action: allow
    to: { paths: ["/healthz"] }
`;

function req(headers: Record<string, string> = {}, path = '/api/orders'): AuthzRequest {
  return { principal: 'spiffe://example.org/ns/default/sa/web', method: 'GET', host: 'orders', path, headers };
}

let key: Key;
let other: Key;
const dir = tempDir('meshward-jwt-');

beforeAll(async () => {
  key = await makeKey('k1');
  other = await makeKey('k1');
  writeFileSync(join(dir.dir, 'jwks.json'), JSON.stringify({ keys: [key.jwk] }));
});
afterAll(() => dir.cleanup());

describe('JWT with a local JWKS file', () => {
  function engine(jwt = '', clock = new ManualClock(NOW)) {
    const file = join(dir.dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `${RULES}\njwt:\n  issuer: ${ISSUER}\n  audiences: [orders, billing]\n  jwksFile: jwks.json\n${jwt}`);
    return loadPolicyChain(file, { clock }).chain;
  }

  it('verifies a token and makes its claims usable in `when`', async () => {
    const e = engine();
    expect(await e.decide(req({ authorization: `Bearer ${await sign(key)}` }))).toMatchObject({ kind: 'allow', rule: 'readers' });
    const noScope = await sign(key, { scope: 'profile' });
    expect(await e.decide(req({ authorization: `bearer ${noScope}` }))).toMatchObject({ kind: 'deny', rule: 'default' });
    expect(await e.decide(req({ authorization: `Bearer ${await sign(key, {}, { audience: 'billing' })}` }))).toMatchObject({ kind: 'allow' });
  });

  it.each([
    ['another audience', () => sign(key, {}, { audience: 'payments' }), 'unexpected "aud" claim value'],
    ['another issuer', () => sign(key, {}, { issuer: 'https://evil.example.org' }), 'unexpected "iss" claim value'],
    ['a signature by another key', () => sign(other), 'signature verification failed'],
    ['garbage', async () => 'not.a.jwt', 'JWS Protected Header is invalid'],
  ])('refuses a token with %s (401 with an invalid_token challenge)', async (_what, token, reason) => {
    const decision = await engine().decide(req({ authorization: `Bearer ${await token()}` }));
    expect(decision.kind).toBe('unauthenticated');
    if (decision.kind !== 'unauthenticated') return;
    expect(decision.reason).toContain(reason);
    expect(decision.challenge).toMatch(/^Bearer realm="meshward", error="invalid_token", error_description="[^"]*"$/);
  });

  it('refuses an expired token, allowing for the configured clock skew', async () => {
    const clock = new ManualClock(NOW);
    const e = engine('  clockSkewSeconds: 60\n', clock);
    const token = await sign(key, {}, { expiresInSeconds: 100 });
    clock.advance(150_000);
    expect((await e.decide(req({ authorization: `Bearer ${token}` }))).kind).toBe('allow');
    clock.advance(20_000);
    expect(await e.decide(req({ authorization: `Bearer ${token}` }))).toMatchObject({ kind: 'unauthenticated', reason: expect.stringContaining('"exp"') });
  });

  it('refuses a bearer scheme with no token', async () => {
    expect(await engine().decide(req({ authorization: 'Bearer' }))).toMatchObject({ kind: 'unauthenticated' });
    expect(await engine().decide(req({ authorization: 'Bearer   ' }))).toMatchObject({ kind: 'unauthenticated' });
  });

  it('without a token, decides on the rules alone unless a token is required', async () => {
    const optional = engine();
    expect(await optional.decide(req({}, '/healthz'))).toMatchObject({ kind: 'allow', rule: 'health' });
    expect(await optional.decide(req())).toMatchObject({ kind: 'deny', rule: 'default' });
    // Basic credentials are the application's business, not a JWT.
    expect(await optional.decide(req({ authorization: 'Basic dXNlcjpwYXNz' }, '/healthz'))).toMatchObject({ kind: 'allow' });
    const required = engine('  required: true\n');
    expect(await required.decide(req({}, '/healthz'))).toEqual({ kind: 'unauthenticated', reason: 'a JWT is required', challenge: 'Bearer realm="meshward"' });
    expect(await required.decide(req({ authorization: `Bearer ${await sign(key)}` }, '/healthz'))).toMatchObject({ kind: 'allow' });
  });

  it('reads the token from another header, with no scheme by default', async () => {
    const e = engine('  header: X-JWT\n');
    expect(await e.decide(req({ 'x-jwt': await sign(key) }))).toMatchObject({ kind: 'allow', rule: 'readers' });
    expect(await e.decide(req({ authorization: `Bearer ${await sign(key)}` }))).toMatchObject({ kind: 'deny' });
  });

  it('counts a rate limit keyed by a claim per verified subject', async () => {
    // (Appended after the jwt section: a top-level key of the policy.)
    const e = engine('rateLimits:\n  - { name: per-user, requestsPerSecond: 1, burst: 1, per: "claim:sub" }\n');
    const as = async (sub: string) => e.decide(req({ authorization: `Bearer ${await sign(key, { sub })}` }));
    expect(await as('alice')).toMatchObject({ kind: 'allow' });
    expect(await as('alice')).toMatchObject({ kind: 'rate_limited', limit: 'per-user' });
    expect(await as('bob')).toMatchObject({ kind: 'allow' });
  });

  it('refuses at load time a JWKS file that is missing or is not a key set, naming jwt.jwksFile', () => {
    const policy = join(dir.dir, 'bad-jwks.yaml');
    writeFileSync(join(dir.dir, 'not-jwks.json'), '{"keys": "nope"}');
    for (const [file, why] of [['missing.json', 'file not found'], ['not-jwks.json', 'not a JSON Web Key Set']]) {
      writeFileSync(policy, `jwt: { issuer: ${ISSUER}, audiences: [orders], jwksFile: ${file} }\n`);
      expect(() => loadPolicyChain(policy)).toThrow(ConfigError);
      expect(() => loadPolicyChain(policy)).toThrow(new RegExp(`^${policy}: jwt.jwksFile: .*${file}: ${why}`));
    }
  });
});

describe('JWT with a JWKS URL', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  let keys: JWK[] = [];

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const policy = () => `${RULES}\njwt: { issuer: "${ISSUER}", audiences: [orders], jwksUri: "${url}" }\n`;

  it('fetches the key set once and caches it', async () => {
    keys = [key.jwk];
    fetches = 0;
    const { chain: engine } = loadPolicyChainFromText(policy(), { clock: new ManualClock(NOW) });
    for (let i = 0; i < 3; i++) expect(await engine.decide(req({ authorization: `Bearer ${await sign(key)}` }))).toMatchObject({ kind: 'allow' });
    expect(fetches).toBe(1);
  });

  it('refetches for an unknown key id (rotation), and the runtime carries the cache across reloads', async () => {
    const rotated = await makeKey('k2');
    keys = [key.jwk];
    fetches = 0;
    const runtime = new PolicyRuntime({ clock: new ManualClock(NOW), remoteJwks: { cooldownDuration: 0 } });
    const first = loadPolicyChainFromText(policy(), { runtime }).chain;
    expect(await first.decide(req({ authorization: `Bearer ${await sign(key)}` }))).toMatchObject({ kind: 'allow' });
    const reloaded = loadPolicyChainFromText(policy(), { runtime }).chain;
    expect(await reloaded.decide(req({ authorization: `Bearer ${await sign(key)}` }))).toMatchObject({ kind: 'allow' });
    expect(fetches).toBe(1);
    keys = [key.jwk, rotated.jwk];
    expect(await reloaded.decide(req({ authorization: `Bearer ${await sign(rotated)}` }))).toMatchObject({ kind: 'allow' });
    expect(fetches).toBe(2);
  });

  it('fails closed, and logs, when the key set cannot be fetched', async () => {
    const down = createServer();
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const port = (down.address() as AddressInfo).port;
    await new Promise<void>((resolve) => down.close(() => resolve()));
    const error = vi.fn();
    const logger = { error } as unknown as Logger;
    const text = policy().replace(url, `http://127.0.0.1:${port}/jwks.json`);
    const { chain: engine } = loadPolicyChainFromText(text, { clock: new ManualClock(NOW), logger });
    const decision = await engine.decide(req({ authorization: `Bearer ${await sign(key)}` }));
    expect(decision).toMatchObject({ kind: 'deny', rule: 'error', reason: expect.stringContaining('JWT verification keys are unavailable') });
    expect(error).toHaveBeenCalledOnce();
    // Without a token nothing needs the keys.
    expect(await engine.decide(req({}, '/healthz'))).toMatchObject({ kind: 'allow' });
  });
});

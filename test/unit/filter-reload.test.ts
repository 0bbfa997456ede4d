import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { apiKey } from '../../src/filters/api-key.js';
import { apiKeyHash } from '../../src/filters/api-key-store.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { ipList } from '../../src/filters/ip-list.js';
import { jwt } from '../../src/filters/jwt/jwt-filter.js';
import { validate } from '../../src/filters/validate.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, hopContext, type ContextInput } from '../helpers/filter-context.js';

// SIGHUP reaches a filter as reload(): every filter that keeps a file in force must read it again there, at once, so
// an operator whose file watch is lost (an NFS mount, a ConfigMap's symlink swap on some kernels) can still rotate
// keys and feeds. Each case changes the file, calls reload() and checks the very next request: the watcher's debounce
// has not fired yet, so only reload() can have put the new file in force.

const { dir, cleanup } = tempDir('meshward-filter-reload-');
const made: HttpFilter[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((f) => f.close?.()));
});
afterAll(cleanup);

async function make<S>(factory: { settings: { parse(v: unknown): S }; create(s: S, env: ReturnType<typeof filterEnv>): HttpFilter | Promise<HttpFilter> }, settings: unknown) {
  const filter = await factory.create(factory.settings.parse(settings), filterEnv({ configDir: dir }));
  made.push(filter);
  return filter;
}

async function status(filter: HttpFilter, input: ContextInput): Promise<number | undefined> {
  const reply = await filter.onRequest?.(hopContext(input));
  return reply?.status;
}

describe('reload() reads a filter\'s file again at once (SIGHUP)', () => {
  it('apiKey: a key added to the keys file is accepted', async () => {
    const [billing, reports] = ['mw_reload-billing-0123456789abcdefghijklmnopq', 'mw_reload-reports-0123456789abcdefghijklmnopq'];
    writeFileSync(join(dir, 'keys.yaml'), `keys:\n  - { name: billing, sha256: ${apiKeyHash(billing)} }\n`);
    const filter = await make(apiKey, { keysFile: 'keys.yaml' });
    expect(await status(filter, { headers: { 'x-api-key': reports } })).toBe(401);
    writeFileSync(join(dir, 'keys.yaml'), `keys:\n  - { name: billing, sha256: ${apiKeyHash(billing)} }\n  - { name: reports, sha256: ${apiKeyHash(reports)} }\n`);
    await filter.reload!();
    expect(await status(filter, { headers: { 'x-api-key': reports } })).toBeUndefined();
  });

  it('ipList: an address added to a deny file is refused', async () => {
    writeFileSync(join(dir, 'feed.txt'), '# nothing yet\n');
    const filter = await make(ipList, { denyFiles: ['feed.txt'] });
    expect(await status(filter, { sourceIp: '203.0.113.9' })).toBeUndefined();
    writeFileSync(join(dir, 'feed.txt'), '203.0.113.0/24\n');
    await filter.reload!();
    expect(await status(filter, { sourceIp: '203.0.113.9' })).toBe(403);
  });

  it('validate: a path added to the OpenAPI document is let through', async () => {
    const doc = (paths: string[]) =>
      `openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n${paths.map((p) => `  ${p}:\n    get:\n      responses: { '200': { description: ok } }\n`).join('')}`;
    writeFileSync(join(dir, 'api.yaml'), doc(['/a']));
    const filter = await make(validate, { openapi: 'api.yaml' });
    expect(await status(filter, { path: '/b' })).toBe(404);
    writeFileSync(join(dir, 'api.yaml'), doc(['/a', '/b']));
    await filter.reload!();
    expect(await status(filter, { path: '/b' })).toBeUndefined();
  });

  it('jwt: a token signed by a key added to the JWKS file verifies (a key rotation without a restart)', async () => {
    const key = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
    };
    const [old, rotated] = [await key('old'), await key('new')];
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [old.jwk] }));
    const filter = await make(jwt, { issuer: 'https://idp.example', audiences: ['orders'], jwksFile: 'jwks.json' });
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'new' })
      .setIssuer('https://idp.example').setAudience('orders').setIssuedAt().setExpirationTime('5m').sign(rotated.privateKey);
    const bearer = { authorization: `Bearer ${token}` };
    expect(await status(filter, { headers: bearer })).toBe(401);
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [old.jwk, rotated.jwk] }));
    await filter.reload!();
    expect(await status(filter, { headers: bearer })).toBeUndefined();
    // A file that is not a key set is refused; the keys in force stay.
    writeFileSync(join(dir, 'jwks.json'), '{"keys": "nope"}');
    await filter.reload!();
    expect(await status(filter, { headers: bearer })).toBeUndefined();
  });
});

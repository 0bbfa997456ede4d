import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiKey, presentedApiKey, withoutQueryParameter } from '../../src/filters/api-key.js';
import { apiKeyHash, ApiKeySet, newApiKey, parseApiKeys, withApiKey } from '../../src/filters/api-key-store.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

const KEY = 'mw_test-key-for-billing-0123456789abcdefghijk';
const OTHER = 'mw_test-key-for-reports-0123456789abcdefghijk';
const KEYS_FILE = `keys:\n  - name: billing\n    sha256: ${apiKeyHash(KEY)}\n  - name: reports\n    sha256: ${apiKeyHash(OTHER)}\n`;

describe('API key store', () => {
  it('makes keys with the mw_ prefix and 256 bits of randomness, each different', () => {
    const keys = new Set(Array.from({ length: 50 }, newApiKey));
    expect(keys.size).toBe(50);
    for (const key of keys) expect(key).toMatch(/^mw_[A-Za-z0-9_-]{43}$/);
  });

  it('finds a key by its hash and names no key for anything else', () => {
    const set = parseApiKeys(KEYS_FILE, 'keys.yaml');
    expect(set.nameOf(KEY)).toBe('billing');
    expect(set.nameOf(OTHER)).toBe('reports');
    expect(set.nameOf(apiKeyHash(KEY))).toBeUndefined();
    expect(set.nameOf(`${KEY}x`)).toBeUndefined();
    expect(new ApiKeySet([]).nameOf(KEY)).toBeUndefined();
  });

  it('refuses a file with a bad hash, a duplicate name, one key under two names, or an unknown field', () => {
    const hash = apiKeyHash(KEY);
    expect(() => parseApiKeys(`keys:\n  - { name: a, sha256: ${KEY} }\n`, 'k.yaml')).toThrow(/k\.yaml: keys\[0\]\.sha256: must be the SHA-256/);
    expect(() => parseApiKeys(`keys:\n  - { name: a, sha256: ${hash.toUpperCase()} }\n`, 'k.yaml')).toThrow(/lower-case hex/);
    expect(() => parseApiKeys(`keys:\n  - { name: a, sha256: ${hash} }\n  - { name: a, sha256: ${apiKeyHash(OTHER)} }\n`, 'k.yaml')).toThrow(/keys\[1\]\.name: "a" is listed twice/);
    expect(() => parseApiKeys(`keys:\n  - { name: a, sha256: ${hash} }\n  - { name: b, sha256: ${hash} }\n`, 'k.yaml')).toThrow(/keys\[1\]\.sha256: is the hash of a key listed before/);
    expect(() => parseApiKeys(`keys:\n  - { name: a, hash: ${hash} }\n`, 'k.yaml')).toThrow(/unknown field "hash"/);
    expect(() => parseApiKeys(`keys:\n  - { name: "a b", sha256: ${hash} }\n`, 'k.yaml')).toThrow(/keys\[0\]\.name: must be 1-64 letters/);
  });

  it('takes an empty file as no keys', () => {
    expect(parseApiKeys('', 'k.yaml').size).toBe(0);
    expect(parseApiKeys('# nothing yet\n', 'k.yaml').size).toBe(0);
  });

  it('adds an entry keeping comments and the other entries, and refuses a name that is taken', () => {
    const first = withApiKey('', 'k.yaml', 'billing', apiKeyHash(KEY));
    expect(first).toMatch(/^# API keys/);
    expect(first).toContain(`keys:\n  - name: billing\n    sha256: ${apiKeyHash(KEY)}\n`);
    expect(withApiKey('keys: []\n', 'k.yaml', 'billing', apiKeyHash(KEY))).toBe(`keys:\n  - name: billing\n    sha256: ${apiKeyHash(KEY)}\n`);
    const commented = `# ours\n${first}`;
    const second = withApiKey(commented, 'k.yaml', 'reports', apiKeyHash(OTHER));
    expect(second).toContain('# ours');
    const set = parseApiKeys(second, 'k.yaml');
    expect([set.nameOf(KEY), set.nameOf(OTHER)]).toEqual(['billing', 'reports']);
    expect(() => withApiKey(second, 'k.yaml', 'billing', apiKeyHash('mw_another'))).toThrow('k.yaml: an API key named "billing" exists already');
    expect(() => withApiKey('keys: 3\n', 'k.yaml', 'x', apiKeyHash(KEY))).toThrow(/k\.yaml: keys: must be a list/);
  });
});

describe('where the key is', () => {
  const where = { header: 'x-api-key', queryParameter: 'api_key' };

  it('reads the header or the query parameter (decoded as the app would)', () => {
    expect(presentedApiKey(['X-API-Key', KEY], '/a', where)).toEqual({ ok: true, key: KEY });
    expect(presentedApiKey([], `/a?x=1&api_key=${KEY}`, where)).toEqual({ ok: true, key: KEY });
    expect(presentedApiKey([], `/a?api%5Fkey=${KEY}`, where)).toEqual({ ok: true, key: KEY });
    expect(presentedApiKey([], '/a', where)).toEqual({ ok: true, key: undefined });
    expect(presentedApiKey([], `/a?api_key=${KEY}`, { header: 'x-api-key' })).toEqual({ ok: true, key: undefined });
  });

  it('reads the header in the spelling with underscores too, which WSGI and CGI servers take for the same header', () => {
    expect(presentedApiKey(['X_API_KEY', KEY], '/a', where)).toEqual({ ok: true, key: KEY });
    expect(presentedApiKey(['x-api-key', KEY, 'x_api_key', OTHER], '/a', where).ok).toBe(false);
  });

  it('refuses two different keys: header twice, parameter twice, or header and parameter disagreeing', () => {
    expect(presentedApiKey(['x-api-key', KEY, 'x-api-key', OTHER], '/a', where).ok).toBe(false);
    expect(presentedApiKey([], `/a?api_key=${KEY}&api_key=${OTHER}`, where).ok).toBe(false);
    expect(presentedApiKey(['x-api-key', KEY], `/a?api_key=${OTHER}`, where).ok).toBe(false);
    expect(presentedApiKey(['x-api-key', KEY], `/a?api_key=${KEY}`, where)).toEqual({ ok: true, key: KEY });
  });

  it('takes the parameter out of the path in every spelling, keeping the rest byte for byte', () => {
    expect(withoutQueryParameter(`/a?x=%2F1&api_key=${KEY}&y=2`, 'api_key')).toBe('/a?x=%2F1&y=2');
    expect(withoutQueryParameter(`/a?api%5Fkey=${KEY}`, 'api_key')).toBe('/a');
    expect(withoutQueryParameter(`/a?api_key=1&api_key=2`, 'api_key')).toBe('/a');
    expect(withoutQueryParameter('/a?api_keys=1', 'api_key')).toBe('/a?api_keys=1');
    expect(withoutQueryParameter('/a', 'api_key')).toBe('/a');
  });
});

describe('apiKey filter', () => {
  const dirs: Array<() => void> = [];
  const filters: HttpFilter[] = [];
  afterEach(async () => {
    for (const f of filters.splice(0)) await f.close?.();
    for (const cleanup of dirs.splice(0)) cleanup();
  });

  async function make(settings: Record<string, unknown> = {}, content = KEYS_FILE) {
    const { dir, cleanup } = tempDir('meshward-apikey-');
    dirs.push(cleanup);
    writeFileSync(join(dir, 'keys.yaml'), content);
    const env = filterEnv({ configDir: dir });
    const filter = await apiKey.create(apiKey.settings.parse({ keysFile: 'keys.yaml', ...settings }), env);
    filters.push(filter);
    return { filter, env, dir };
  }

  it('refuses settings without a keys file or with an unknown field', () => {
    expect(apiKey.settings.safeParse({}).success).toBe(false);
    const typo = apiKey.settings.safeParse({ keysFile: 'k.yaml', headr: 'x' });
    expect(typo.success).toBe(false);
    expect(typo.error?.issues[0]?.message).toContain('did you mean "header"');
  });

  it('refuses to start on a missing or invalid keys file, naming it', async () => {
    const { dir, cleanup } = tempDir('meshward-apikey-');
    dirs.push(cleanup);
    const env = filterEnv({ configDir: dir });
    await expect(apiKey.create(apiKey.settings.parse({ keysFile: 'none.yaml' }), env)).rejects.toThrow(/none\.yaml: file not found/);
    writeFileSync(join(dir, 'bad.yaml'), 'keys: [ { name: x } ]\n');
    await expect(apiKey.create(apiKey.settings.parse({ keysFile: 'bad.yaml' }), env)).rejects.toThrow(/bad\.yaml: keys\[0\]\.sha256: is required/);
  });

  it('makes a known key the principal apikey:NAME and takes the key out of the request', async () => {
    const { filter } = await make();
    const ctx = hopContext({ headers: { 'X-Api-Key': KEY, accept: 'application/json' }, principal: 'spiffe://td/x' });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    expect(ctx.request.principal).toBe('apikey:billing');
    expect(ctx.removeHeaders).toContain('x-api-key');
    expect(ctx.request.headers['x-api-key']).toBeUndefined();
  });

  it('takes the key out in every spelling of the header an app may read', async () => {
    const { filter } = await make();
    const ctx = hopContext({ headers: [['X-Api-Key', KEY], ['X_Api_Key', KEY]] });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    expect(ctx.removeHeaders).toEqual(expect.arrayContaining(['x-api-key', 'x_api_key']));
    expect(ctx.request.headers).toEqual({});
  });

  it('answers 401 with a challenge for a missing, unknown or doubled key, and takes the key out all the same', async () => {
    const { filter } = await make();
    for (const headers of [[], [['x-api-key', 'mw_nope']], [['x-api-key', KEY], ['x-api-key', OTHER]]] as Array<Array<[string, string]>>) {
      const ctx = hopContext({ headers });
      const reply = filter.onRequest!(ctx) as { status: number; headers: Record<string, string>; body: string };
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('ApiKey realm="meshward", header="x-api-key"');
      expect(JSON.parse(reply.body)).toMatchObject({ error: 'unauthenticated', requestId: 'req-1' });
      expect(reply.body).not.toContain('mw_');
      expect(ctx.request.principal).toBeUndefined();
      expect(ctx.decision).toEqual({ outcome: 'unauthenticated', rule: 'apiKey' });
    }
  });

  it('takes a key from the query parameter when one is named, and rewrites the path without it', async () => {
    const { filter } = await make({ queryParameter: 'api_key', header: 'X-Key' });
    const ctx = hopContext({ path: `/v1/orders?api_key=${KEY}&page=2` });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    expect(ctx.request.path).toBe('/v1/orders?page=2');
    expect(ctx.request.principal).toBe('apikey:billing');
    const wrong = hopContext({ path: '/v1/orders?api_key=mw_nope' });
    expect(filter.onRequest!(wrong)).toMatchObject({ status: 401 });
    expect(wrong.request.path).toBe('/v1/orders');
  });

  it('picks up a changed keys file; a broken one keeps the last good keys and says why', async () => {
    const { filter, env, dir } = await make();
    const file = join(dir, 'keys.yaml');
    const accepts = (key: string) => filter.onRequest!(hopContext({ headers: { 'x-api-key': key } })) === undefined;
    writeFileSync(file, 'keys: [ { name: broken } ]\n');
    await env.waitFor(/API keys rejected/);
    expect(env.lines.join('\n')).toMatch(/keys\[0\]\.sha256: is required/);
    expect(accepts(KEY)).toBe(true);
    writeFileSync(file, `keys:\n  - name: reports\n    sha256: ${apiKeyHash(OTHER)}\n`);
    await env.waitFor(/API keys reloaded/);
    expect(accepts(KEY)).toBe(false);
    expect(accepts(OTHER)).toBe(true);
  });
});


import { resolve } from 'node:path';
import { z } from 'zod';
import { apiKeyPrincipal } from '../authz/index.js';
import { strictObject } from '../config/index.js';
import { jsonReply, type LocalReply } from './local-reply.js';
import { parseApiKeys, type ApiKeySet } from './api-key-store.js';
import type { HopContext } from './chain.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';
import { headerSpellings, headerValues, removeRequestHeader } from './request-headers.js';
import { WatchedFile } from './watched-file.js';

// `apiKey`: the caller names itself with a key (Kong's key-auth, Tyk's auth token). The key's name becomes the
// request's principal `apikey:NAME` for the policy and rate limits after it; a missing or unknown key is a 401. The
// key is taken out of the request before anything else sees it (the app, a later filter, a log): from the headers,
// and from the path when it came as a query parameter.

/** Longer than any key `meshward apikey create` makes by far; a longer value is no key and is not hashed. */
const MAX_KEY_LENGTH = 512;

const settings = strictObject({
  /** The keys file (names and SHA-256 hashes), relative to the config file's directory; reloaded on change. */
  keysFile: z.string().min(1),
  /** The header that carries the key. */
  header: z
    .string()
    .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name')
    .transform((name) => name.toLowerCase())
    .default('x-api-key'),
  /** A query parameter that may carry the key instead (off unless named: URLs end up in logs and browser history). */
  queryParameter: z.string().min(1).optional(),
});

export type ApiKeySettings = z.output<typeof settings>;

export type PresentedKey = { ok: true; key: string | undefined } | { ok: false; reason: string };

/**
 * The key the request presents in the header or the query parameter; none is `key: undefined`. Two different keys
 * (the header twice, the parameter twice, or header and parameter disagreeing) are refused: which one counts would be
 * a guess, and the app might read the other.
 */
export function presentedApiKey(rawHeaders: readonly string[], path: string, where: Pick<ApiKeySettings, 'header' | 'queryParameter'>): PresentedKey {
  const found = new Set(headerSpellings(rawHeaders, where.header).flatMap((name) => headerValues(rawHeaders, name)));
  if (where.queryParameter !== undefined) for (const value of queryValues(path, where.queryParameter)) found.add(value);
  if (found.size > 1) return { ok: false, reason: 'the request presents more than one API key' };
  const [key] = found;
  if (key !== undefined && (key === '' || key.length > MAX_KEY_LENGTH)) return { ok: false, reason: 'the API key is not valid' };
  return { ok: true, key };
}

/** The request target without any `name=` query parameter (the name compared decoded); the rest kept byte for byte. */
export function withoutQueryParameter(path: string, name: string): string {
  const question = path.indexOf('?');
  if (question === -1) return path;
  const kept = path
    .slice(question + 1)
    .split('&')
    .filter((pair) => pair === '' || parameterName(pair) !== name);
  return kept.length === 0 ? path.slice(0, question) : `${path.slice(0, question)}?${kept.join('&')}`;
}

function queryValues(path: string, name: string): string[] {
  const question = path.indexOf('?');
  return question === -1 ? [] : new URLSearchParams(path.slice(question + 1)).getAll(name);
}

function parameterName(pair: string): string {
  // URLSearchParams decodes as the app's parser will (`%5F` and `+` included), so no spelling gets a key past.
  return [...new URLSearchParams(pair).keys()][0] ?? '';
}

function challenge(where: ApiKeySettings): string {
  return `ApiKey realm="meshward", header="${where.header}"${where.queryParameter === undefined ? '' : `, query="${where.queryParameter}"`}`;
}

/** The request side, given the keys in force now (read once per request, so a reload never splits one). */
export function checkApiKey(ctx: HopContext, keys: ApiKeySet, where: ApiKeySettings): LocalReply | undefined {
  const presented = presentedApiKey(ctx.rawHeaders, ctx.request.path, where);
  for (const name of headerSpellings(ctx.rawHeaders, where.header)) removeRequestHeader(ctx, name);
  if (where.queryParameter !== undefined) ctx.request.path = withoutQueryParameter(ctx.request.path, where.queryParameter);
  const name = presented.ok && presented.key !== undefined ? keys.nameOf(presented.key) : undefined;
  if (name !== undefined) {
    ctx.request.principal = apiKeyPrincipal(name);
    return undefined;
  }
  const reason = !presented.ok ? presented.reason : presented.key === undefined ? 'an API key is required' : 'the API key is not valid';
  ctx.decision = { outcome: 'unauthenticated', rule: 'apiKey' };
  return jsonReply(401, { error: 'unauthenticated', reason, requestId: ctx.requestId }, { 'www-authenticate': challenge(where) });
}

export const apiKey: FilterFactory<ApiKeySettings> = {
  name: 'apiKey',
  settings,
  async create(config, env): Promise<HttpFilter> {
    const keys = await WatchedFile.open(resolve(env.configDir, config.keysFile), parseApiKeys, env.logger, 'API keys');
    if (keys.current.size === 0) env.logger.warn({ file: keys.file }, 'the API keys file lists no key: every request is refused');
    return {
      name: 'apiKey',
      onRequest: (ctx) => checkApiKey(ctx, keys.current, config),
      reload: () => keys.reload(),
      close: () => keys.close(),
    };
  },
};

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isMap, isSeq, parseDocument } from 'yaml';
import { z } from 'zod';
import { API_KEY_NAME_RULE, isApiKeyName } from '../authz/api-key-principal.js';
import { parseYaml, strictObject } from '../config/index.js';

// API keys as the apiKey filter stores them: a name and the SHA-256 of the key, never the key itself, so a copy of
// the file lets nobody in. The file is YAML:
//
//   keys:
//     - name: billing
//       sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

/** New keys start with this, so that a leaked one is recognisable (secret scanners, logs, a pasted config). */
export const API_KEY_PREFIX = 'mw_';

const entrySchema = strictObject({
  name: z.string().refine(isApiKeyName, API_KEY_NAME_RULE),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the key as 64 lower-case hex digits'),
});

const keysFileSchema = strictObject({ keys: z.array(entrySchema).nullish() }).superRefine((file, ctx) => {
  const names = new Set<string>();
  const hashes = new Set<string>();
  for (const [i, entry] of (file.keys ?? []).entries()) {
    if (names.has(entry.name)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'name'], message: `"${entry.name}" is listed twice` });
    // One key with two names would make the principal a guess.
    if (hashes.has(entry.sha256)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'sha256'], message: 'is the hash of a key listed before under another name' });
    names.add(entry.name);
    hashes.add(entry.sha256);
  }
});

export function apiKeyNameRule(name: string): string {
  return `"${name}" ${API_KEY_NAME_RULE}`;
}

/** 32 random bytes (256 bits) in base64url after the prefix. */
export function newApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function apiKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The names and hashes of a keys file, looked up without telling by its timing which stored hash came close. */
export class ApiKeySet {
  private readonly names: readonly string[];
  private readonly hashes: readonly Buffer[];

  constructor(entries: ReadonlyArray<{ name: string; sha256: string }>) {
    this.names = entries.map((e) => e.name);
    this.hashes = entries.map((e) => Buffer.from(e.sha256, 'hex'));
  }

  get size(): number {
    return this.names.length;
  }

  /** The name of the key, or undefined. Every stored hash is compared, in constant time each, whatever matches. */
  nameOf(key: string): string | undefined {
    const digest = createHash('sha256').update(key).digest();
    let found = -1;
    for (let i = 0; i < this.hashes.length; i++) {
      if (timingSafeEqual(this.hashes[i]!, digest)) found = i;
    }
    return found === -1 ? undefined : this.names[found];
  }
}

/** Parses a keys file; throws a ConfigError naming the file, the entry and the reason. Empty text is no keys. */
export function parseApiKeys(text: string, file: string): ApiKeySet {
  return new ApiKeySet(parseYaml(text, keysFileSchema, file).keys ?? []);
}

/**
 * The keys file's text with one more entry, comments and the other entries kept as they were. Throws a ConfigError
 * if the existing text is not a valid keys file (it is not overwritten), or an Error if the name is taken.
 */
export function withApiKey(text: string, file: string, name: string, sha256: string): string {
  parseApiKeys(text, file);
  const doc = parseDocument(text.trim() === '' ? HEADER : text);
  const keys = doc.get('keys');
  if (!isSeq(keys)) {
    doc.set('keys', doc.createNode([{ name, sha256 }]));
    return doc.toString();
  }
  if (keys.items.some((entry) => isMap(entry) && entry.get('name') === name)) throw new Error(`${file}: an API key named "${name}" exists already`);
  keys.add(doc.createNode({ name, sha256 }));
  // `keys: []` written by hand becomes a block list once it has entries: one entry per line reads (and diffs) best.
  keys.flow = false;
  return doc.toString();
}

const HEADER = `# API keys for meshward's apiKey filter: each key's name and the SHA-256 of the key (never the key).
# Add one with \`meshward apikey create --name NAME --file FILE\`; remove one by deleting its entry.
`;

import { parseSpiffeId } from '../../spiffe/index.js';
import { API_KEY_NAME_RULE, API_KEY_PRINCIPAL_PREFIX, isApiKeyName } from '../api-key-principal.js';
import type { PatternResult } from './pattern-result.js';
import { flatString } from './string-pool.js';
import { listHas, toValueList, type ValueList } from './value-list.js';

// Principal patterns: `*` is any authenticated caller (an SVID or, at the edge, an API key), `spiffe://td/ns/team-*`
// a prefix, `apikey:NAME` the caller of one API key and `apikey:*` any API key's, anything else one exact SPIFFE ID.
// A request without a principal matches no pattern at all.

export type PrincipalPattern =
  | { kind: 'any'; source: '*' }
  | { kind: 'exact'; source: string }
  | { kind: 'prefix'; source: string; prefix: string };

const SCHEME = 'spiffe://';

export function parsePrincipalPattern(source: string): PatternResult<PrincipalPattern> {
  if (source === '*') return { ok: true, value: { kind: 'any', source } };
  if (source.startsWith(API_KEY_PRINCIPAL_PREFIX)) return parseApiKeyPattern(source);
  const star = source.indexOf('*');
  if (star === -1) {
    const id = parseSpiffeId(source);
    return id.ok ? { ok: true, value: { kind: 'exact', source } } : { ok: false, error: id.error };
  }
  if (star !== source.length - 1) return { ok: false, error: `"${source}": "*" is allowed only at the end of a principal pattern` };
  const prefix = source.slice(0, -1);
  // Appending one valid character turns a well-formed prefix into a well-formed ID.
  const probe = parseSpiffeId(`${prefix}x`);
  if (!probe.ok) {
    const why = probe.error.slice(probe.error.indexOf('is not a SPIFFE ID: ') + 'is not a SPIFFE ID: '.length);
    return { ok: false, error: `"${source}" is not a SPIFFE ID prefix: ${why}` };
  }
  // A prefix that stops inside the trust domain (`spiffe://example.org*`) would also admit
  // `spiffe://example.org.attacker.net`: the trust domain must be complete.
  if (!prefix.slice(SCHEME.length).includes('/')) {
    return { ok: false, error: `"${source}": a prefix must include the whole trust domain and a "/", e.g. "${prefix}/*"` };
  }
  return { ok: true, value: { kind: 'prefix', source, prefix } };
}

function parseApiKeyPattern(source: string): PatternResult<PrincipalPattern> {
  const name = source.slice(API_KEY_PRINCIPAL_PREFIX.length);
  if (name === '*') return { ok: true, value: { kind: 'prefix', source, prefix: API_KEY_PRINCIPAL_PREFIX } };
  if (!isApiKeyName(name)) return { ok: false, error: `"${source}": an API key's name ${API_KEY_NAME_RULE} (or "apikey:*" for any key)` };
  return { ok: true, value: { kind: 'exact', source } };
}

/** A compiled list of principal patterns: one lookup for exact IDs, then the (usually few) prefixes. `sources` as written. */
export class PrincipalMatcher {
  private readonly any: boolean;
  // null rather than empty, so a decision does not touch (and pull into cache) what it does not need.
  private readonly exact: ValueList<string> | null;
  private readonly prefixes: readonly string[] | null;

  constructor(readonly sources: readonly string[]) {
    const patterns = mustParsePrincipalPatterns(sources);
    const exact = patterns.filter((p) => p.kind === 'exact').map((p) => p.source);
    const prefixes = patterns.flatMap((p) => (p.kind === 'prefix' ? [flatString(p.prefix)] : []));
    this.any = patterns.some((p) => p.kind === 'any');
    this.exact = exact.length > 0 ? toValueList(exact) : null;
    this.prefixes = prefixes.length > 0 ? prefixes : null;
  }

  matches(principal: string | undefined): boolean {
    if (principal === undefined || principal === '') return false;
    if (this.any || (this.exact !== null && listHas(this.exact, principal))) return true;
    if (this.prefixes !== null) {
      for (let i = 0; i < this.prefixes.length; i++) if (principal.startsWith(this.prefixes[i]!)) return true;
    }
    return false;
  }
}

/** Parses patterns already validated by the schema; a failure here is a programming error. */
export function mustParsePrincipalPatterns(sources: readonly string[]): PrincipalPattern[] {
  return sources.map((source) => {
    const parsed = parsePrincipalPattern(source);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

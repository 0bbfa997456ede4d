// SPIFFE ID parsing and validation, per the SPIFFE-ID specification (spiffe/standards SPIFFE-ID.md).
// Pure: no I/O. Every refusal names what is wrong so the caller can print it as-is.

export const MAX_SPIFFE_ID_BYTES = 2048;
export const MAX_TRUST_DOMAIN_LENGTH = 255;

const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;
const SCHEME_PREFIX = 'spiffe://';

export interface SpiffeId {
  readonly trustDomain: string;
  /** The path with its leading slash, or '' for a trust-domain ID such as `spiffe://example.org`. */
  readonly path: string;
  /** The canonical string form, `spiffe://<trustDomain><path>`. */
  readonly uri: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export function validateTrustDomain(td: string): string | undefined {
  if (td.length === 0) return 'trust domain is empty';
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (!TRUST_DOMAIN_CHARS.test(td)) {
    if (td.includes(':')) return 'trust domain must not contain a port';
    if (td.includes('@')) return 'trust domain must not contain userinfo';
    if (/[A-Z]/.test(td)) return 'trust domain must be lower case';
    return 'trust domain may contain only a-z, 0-9, ".", "-" and "_"';
  }
  return undefined;
}

function validatePath(path: string): string | undefined {
  if (path === '') return undefined;
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') return path.endsWith('/') ? 'path must not end with "/"' : 'path has an empty segment ("//")';
    if (segment === '.' || segment === '..') return `path segment "${segment}" is not allowed`;
    if (!PATH_SEGMENT_CHARS.test(segment)) {
      if (segment.includes('%')) return 'path must not be percent-encoded';
      return `path segment "${segment}" may contain only A-Z, a-z, 0-9, ".", "-" and "_"`;
    }
  }
  return undefined;
}

export function parseSpiffeId(input: string): ParseResult<SpiffeId> {
  const fail = (why: string): ParseResult<SpiffeId> => ({ ok: false, error: `"${truncate(input)}" is not a SPIFFE ID: ${why}` });
  if (typeof input !== 'string' || input.length === 0) return fail('it is empty');
  if (Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_BYTES) return fail(`it is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!input.startsWith(SCHEME_PREFIX)) {
    if (/^spiffe:\/\//i.test(input)) return fail('the scheme must be lower-case "spiffe"');
    return fail('it must start with "spiffe://"');
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  if (rest.includes('?')) return fail('a query is not allowed');
  if (rest.includes('#')) return fail('a fragment is not allowed');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const tdError = validateTrustDomain(trustDomain);
  if (tdError) return fail(tdError);
  const pathError = validatePath(path);
  if (pathError) return fail(pathError);
  return { ok: true, value: { trustDomain, path, uri: input } };
}

/**
 * Parses the SPIFFE ID of a (leaf) SVID: one with a path. The trust domain's own ID names no workload, and the
 * X509-SVID spec (sections 3.1 and 5.2) forbids it in a leaf: it is refused at issuance and at validation.
 */
export function parseSvidId(input: string): ParseResult<SpiffeId> {
  const id = parseSpiffeId(input);
  if (id.ok && id.value.path === '') {
    return { ok: false, error: `"${truncate(input)}" is a trust domain ID, not a workload's: an SVID's SPIFFE ID must have a path (${input}/...)` };
  }
  return id;
}

/** Parses or throws an Error whose message names the input and the reason. */
export function mustParseSpiffeId(input: string): SpiffeId {
  const r = parseSpiffeId(input);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

export function trustDomainId(trustDomain: string): string {
  return `${SCHEME_PREFIX}${trustDomain}`;
}

function truncate(s: string): string {
  return typeof s === 'string' && s.length > 80 ? `${s.slice(0, 77)}...` : String(s);
}

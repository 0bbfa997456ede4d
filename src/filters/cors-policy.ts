import { z } from 'zod';
import { strictObject } from '../config/index.js';
import { jsonReply, type LocalReply } from './local-reply.js';

// CORS (the Fetch standard's CORS protocol) as a pure policy: which origins a browser may let read the answers, which
// preflights pass, and the headers that say so. CORS is no access control (a disallowed origin's request still
// reaches the app when no preflight is needed; only the browser keeps the answer from the page), so the filter
// never blocks an actual request: it answers preflights itself and puts the headers on the way back.

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * `https://app.example.com`, `https://*.example.com` (any subdomain, at any depth; never the domain itself), or `*`
 * (any origin, without credentials).
 */
const originPattern = z
  .string()
  .transform((value) => value.toLowerCase())
  .refine((value) => value === '*' || parseOriginPattern(value) !== undefined, {
    message: 'must be an origin (scheme://host[:port], no path), scheme://*.domain[:port] or "*"',
  });

export const corsSettings = strictObject({
  allowOrigins: z.array(originPattern).min(1),
  allowMethods: z
    .array(z.string().regex(HEADER_NAME, 'must be an HTTP method').transform((m) => m.toUpperCase()))
    .default(['GET', 'HEAD', 'POST']),
  /** Request headers a page may send beyond the CORS-safelisted ones; `*` allows whatever a preflight asks for. */
  allowHeaders: z.array(z.string().regex(HEADER_NAME, 'must be a header name or "*"').transform((h) => h.toLowerCase())).default([]),
  /** Response headers a page may read beyond the CORS-safelisted ones. */
  exposeHeaders: z.array(z.string().regex(HEADER_NAME, 'must be a header name').transform((h) => h.toLowerCase())).default([]),
  allowCredentials: z.boolean().default(false),
  /** Seconds a browser may cache a preflight's answer; unset leaves the browser's default (5 s). */
  maxAge: z.number().int().min(0).max(86_400).optional(),
}).superRefine((settings, ctx) => {
  if (!settings.allowCredentials) return;
  const star = settings.allowOrigins.indexOf('*');
  if (star !== -1) {
    ctx.addIssue({
      code: 'custom',
      path: ['allowOrigins', star],
      message: '"*" cannot be used with allowCredentials: true (it would let every site send requests with the user\'s cookies); list the origins',
    });
  }
});

export type CorsSettings = z.output<typeof corsSettings>;

interface WildcardOrigin {
  protocol: string;
  /** `.example.com`: a host must end with it and have at least one more label. */
  suffix: string;
  port: string;
}

export interface CorsPolicy {
  readonly anyOrigin: boolean;
  readonly exact: ReadonlySet<string>;
  readonly wildcards: readonly WildcardOrigin[];
  readonly methods: ReadonlySet<string>;
  readonly headers: ReadonlySet<string>;
  readonly anyHeader: boolean;
  readonly settings: CorsSettings;
}

/** A pattern as written (lower case) → its parts; undefined when it is no origin or wildcard origin. */
function parseOriginPattern(pattern: string): { exact: string } | { wildcard: WildcardOrigin } | undefined {
  const wildcard = /^([a-z][a-z0-9+.-]*:\/\/)\*(\.[^/:]+)(:\d+)?$/.exec(pattern);
  if (wildcard) {
    const [, scheme, suffix, port] = wildcard as unknown as [string, string, string, string | undefined];
    // At least two labels after `*.`: `https://*.com` would be every site under a public suffix.
    if (suffix.split('.').length < 3) return undefined;
    const url = canonicalOrigin(`${scheme}x${suffix}${port ?? ''}`);
    if (url === undefined) return undefined;
    return { wildcard: { protocol: url.protocol, suffix, port: url.port } };
  }
  return canonicalOrigin(pattern) === undefined ? undefined : { exact: pattern };
}

/**
 * The URL of a serialised origin (as browsers send it), or undefined for anything else (`null`, a path, a list, a
 * host the URL parser lets by such as `*`).
 */
function canonicalOrigin(value: string): URL | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (url.origin === 'null' || url.origin !== value) return undefined;
  return /^[a-z0-9.-]+$/.test(url.hostname) || url.hostname.startsWith('[') ? url : undefined;
}

export function corsPolicy(settings: CorsSettings): CorsPolicy {
  const exact = new Set<string>();
  const wildcards: WildcardOrigin[] = [];
  for (const pattern of settings.allowOrigins) {
    if (pattern === '*') continue;
    const parsed = parseOriginPattern(pattern)!;
    if ('exact' in parsed) exact.add(parsed.exact);
    else wildcards.push(parsed.wildcard);
  }
  return {
    anyOrigin: settings.allowOrigins.includes('*'),
    exact,
    wildcards,
    methods: new Set(settings.allowMethods),
    headers: new Set(settings.allowHeaders),
    anyHeader: settings.allowHeaders.includes('*'),
    settings,
  };
}

/** Whether pages from `origin` may read answers (an `Origin` header's value; undefined when there is none). */
export function originAllowed(policy: CorsPolicy, origin: string | undefined): boolean {
  if (origin === undefined) return false;
  const url = canonicalOrigin(origin);
  if (url === undefined) return false;
  if (policy.anyOrigin || policy.exact.has(origin)) return true;
  return policy.wildcards.some(
    (w) => w.protocol === url.protocol && w.port === url.port && url.hostname.endsWith(w.suffix) && url.hostname.length > w.suffix.length,
  );
}

type Headers = Readonly<Record<string, string | undefined>>;

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method (anything else is an ordinary request). */
export function isPreflight(method: string, headers: Headers): boolean {
  return method === 'OPTIONS' && headers.origin !== undefined && headers['access-control-request-method'] !== undefined;
}

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

/** The answer to a preflight: 204 with the CORS headers when everything asked for is allowed, else a 403 without. */
export function preflightReply(policy: CorsPolicy, headers: Headers, requestId: string): LocalReply {
  const origin = headers.origin!;
  const method = headers['access-control-request-method']!;
  const requested = (headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  const refuse = (reason: string) => jsonReply(403, { error: 'forbidden', reason: `CORS preflight: ${reason}`, requestId }, { vary: PREFLIGHT_VARY });
  if (!originAllowed(policy, origin)) return refuse(`origin ${JSON.stringify(origin)} is not allowed`);
  if (!policy.methods.has(method.toUpperCase())) return refuse(`method ${JSON.stringify(method)} is not allowed`);
  const refused = policy.anyHeader ? undefined : requested.find((h) => !policy.headers.has(h));
  if (refused !== undefined) return refuse(`header ${JSON.stringify(refused)} is not allowed`);
  const { settings } = policy;
  const out: Record<string, string> = {
    ...allowOriginHeaders(policy, origin),
    'access-control-allow-methods': settings.allowMethods.join(', '),
    vary: PREFLIGHT_VARY,
  };
  const allowHeaders = policy.anyHeader ? requested : settings.allowHeaders;
  if (allowHeaders.length > 0) out['access-control-allow-headers'] = allowHeaders.join(', ');
  if (settings.maxAge !== undefined) out['access-control-max-age'] = String(settings.maxAge);
  return { status: 204, headers: out, body: '' };
}

function allowOriginHeaders(policy: CorsPolicy, origin: string): Record<string, string> {
  // `*` only where it is the whole truth: any origin, no credentials; else the origin itself.
  if (policy.anyOrigin && !policy.settings.allowCredentials) return { 'access-control-allow-origin': '*' };
  const out: Record<string, string> = { 'access-control-allow-origin': origin };
  if (policy.settings.allowCredentials) out['access-control-allow-credentials'] = 'true';
  return out;
}

const CORS_RESPONSE_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
];

/**
 * Puts the CORS headers on an answer to an actual (non-preflight) request, the app's or a local reply: the filter's
 * policy is the only one, so whatever CORS headers the app set are taken off first (an app's `*` must not reach an
 * origin the policy refuses). The answer depends on Origin unless the policy is `*` for all, so it says Vary: Origin.
 */
export function applyCorsHeaders(policy: CorsPolicy, origin: string | undefined, headers: Record<string, string | string[]>): void {
  for (const name of CORS_RESPONSE_HEADERS) delete headers[name];
  if (!(policy.anyOrigin && !policy.settings.allowCredentials)) addVary(headers, 'Origin');
  if (origin === undefined || !originAllowed(policy, origin)) return;
  Object.assign(headers, allowOriginHeaders(policy, origin));
  if (policy.settings.exposeHeaders.length > 0) headers['access-control-expose-headers'] = policy.settings.exposeHeaders.join(', ');
}

function addVary(headers: Record<string, string | string[]>, name: string): void {
  const current = headers.vary;
  const tokens = (Array.isArray(current) ? current.join(',') : (current ?? ''))
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (tokens.includes('*') || tokens.some((t) => t.toLowerCase() === name.toLowerCase())) return;
  headers.vary = [...tokens, name].join(', ');
}

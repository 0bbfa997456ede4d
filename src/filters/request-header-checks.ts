import { checkAuthority } from '../authz/index.js';
import { headersWithUnderscores, strictObject } from '../config/index.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';
import { PRINCIPAL_HEADER, SET_BY_MESHWARD, XFCC_HEADER } from './identity-headers.js';
import { replies } from './local-reply.js';

// What a request's header block must look like before anything judges it: a method in capitals; one authority, well
// formed, the same in Host and :authority; one value of each single-valued field a filter judges; and header names
// with underscores dropped or refused. The pure checks here serve the inbound chain and the outbound listener alike,
// so that both listeners and both HTTP versions hold one rule.

/** Envoy's `headers_with_underscores_action`, with a safer default: `drop`. */
export type UnderscoreHeaderAction = 'drop' | 'reject' | 'allow';

type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * The request's authority (Host, or :authority over HTTP/2), or why it is refused: none; two Host headers (RFC 9112
 * 3.2: a 400, since which one a policy saw would be a guess); Host and :authority naming different hosts (RFC 9113
 * 8.3.1); or not HOST[:PORT].
 */
export function requestAuthority(headers: HeaderMap, rawHeaders: readonly string[]): { ok: true; value: string } | { ok: false; reason: string } {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return { ok: false, reason: 'the request has more than one Host header' };
  const pseudo = headers[':authority'];
  const host = headers.host;
  if (typeof pseudo === 'string' && typeof host === 'string' && pseudo.toLowerCase() !== host.toLowerCase()) {
    return { ok: false, reason: 'the request names one host in :authority and another in Host' };
  }
  const value = typeof pseudo === 'string' ? pseudo : host;
  if (typeof value !== 'string' || value === '') return { ok: false, reason: 'the request has no Host' };
  const checked = checkAuthority(value);
  return checked.ok ? { ok: true, value } : { ok: false, reason: checked.error };
}

const LOWER_CASE = /[a-z]/;

/**
 * Fields that carry one value (RFC 9110) and that filters judge: the credentials (jwt, a policy's `jwt`) and the body's
 * media type (validate). Node keeps the first of each and the forwarder sends every line, so an app that reads the last
 * would act on one no filter saw: a second Authorization after the verified one, a JSON body behind `text/plain`.
 */
const SINGLE_VALUED = new Set(['authorization', 'proxy-authorization', 'content-type']);

/** The first single-valued field (lower case) the request sends more than once, or undefined. */
export function repeatedSingleValuedField(rawHeaders: readonly string[]): string | undefined {
  let seen: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    // (By length first: this runs on every request, and most names are none of these.)
    const length = rawHeaders[i]!.length;
    if (length !== 12 && length !== 13 && length !== 19) continue;
    const name = rawHeaders[i]!.toLowerCase();
    if (!SINGLE_VALUED.has(name)) continue;
    if (seen?.includes(name)) return name;
    (seen ??= []).push(name);
  }
  return undefined;
}

/** Header names (lower case) that contain an underscore; usually none, and then no array is made. */
export function underscoreHeaderNames(rawHeaders: readonly string[]): string[] | undefined {
  let names: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.includes('_')) (names ??= []).push(name.toLowerCase());
  }
  return names;
}

/** Why a request with these underscore names is refused (`reject`), or undefined. */
export function underscoreRefusal(names: readonly string[]): string {
  return `header names with underscores are refused: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;
}

/**
 * The first check of every listener: a bad authority is 400 before any filter reads the host. Identity headers a
 * client sent are no identity, so no filter sees them (and hop-headers.ts never forwards them). Underscore names are
 * refused (400), or dropped from what filters see and what the app gets; under `allow` the spellings of headers
 * meshward sets are dropped still.
 */
export function requestHeaderChecks(underscores: UnderscoreHeaderAction): HttpFilter {
  return {
    name: 'headerChecks',
    onRequest: (ctx) => {
      const headers = ctx.request.headers as HeaderMap;
      const authority = requestAuthority(headers, ctx.rawHeaders);
      if (!authority.ok) return replies.badRequest(ctx.requestId, authority.reason);
      // Node's HTTP/1.1 parser takes methods in capitals only; HTTP/2 passes `delete` on, which routes and filters read
      // as another method than DELETE, and an app that upper-cases methods (Werkzeug, Django, Express's router) as DELETE.
      const { method } = ctx.request;
      if (LOWER_CASE.test(method)) return replies.badRequest(ctx.requestId, `the method ${JSON.stringify(method)} is not in capitals`);
      const repeated = repeatedSingleValuedField(ctx.rawHeaders);
      if (repeated !== undefined) return replies.badRequest(ctx.requestId, `the request has more than one ${repeated} header`);
      if (headers[XFCC_HEADER] !== undefined) delete headers[XFCC_HEADER];
      if (headers[PRINCIPAL_HEADER] !== undefined) delete headers[PRINCIPAL_HEADER];
      const names = underscoreHeaderNames(ctx.rawHeaders);
      if (names === undefined) return undefined;
      if (underscores === 'reject') return replies.badRequest(ctx.requestId, underscoreRefusal(names));
      for (const name of names) {
        if (underscores === 'drop' || SET_BY_MESHWARD.has(name.replaceAll('_', '-'))) delete headers[name];
      }
      if (underscores === 'drop') ctx.removeHeaders.push(...names);
      return undefined;
    },
  };
}

/** Built from the listener's `headersWithUnderscores`; always a listener's first filter (a `filters:` list cannot name it). */
export const headerChecks: FilterFactory<{ headersWithUnderscores: UnderscoreHeaderAction }> = {
  name: 'headerChecks',
  settings: strictObject({ headersWithUnderscores }),
  create: (settings) => requestHeaderChecks(settings.headersWithUnderscores),
};

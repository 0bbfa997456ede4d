import { z } from 'zod';
import { strictObject } from '../config/index.js';
import { PRINCIPAL_HEADER, XFCC_HEADER } from './identity-headers.js';
import type { FilterFactory, FilterResponse } from './http-filter.js';
import { appendRequestHeader, headerSpellings, removeRequestHeader, setRequestHeader } from './request-headers.js';

// `headers`: set, append and remove request and response headers (Kong's request/response-transformer, Envoy's
// request_headers_to_add), and a `securityHeaders` preset for answers that reach browsers. Per side the edits run
// remove, then set, then append. Request edits are seen by the filters after this one and by the app.

const NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** No CR, LF or NUL: a value must not end the header block or start another header. */
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Names no config may write. The identity headers are meshward's word on who called (any spelling: WSGI/CGI servers
 * read `_` as `-`); framing and connection headers belong to each hop's HTTP layer; Host is what routing and the
 * policy matched.
 */
const RESERVED = new Map<string, string>([
  [XFCC_HEADER, 'it is meshward\'s identity header, written only by the sidecar that verified the peer'],
  [PRINCIPAL_HEADER, 'it is meshward\'s identity header, written only by the sidecar that verified the peer'],
  ...['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection'].map(
    (name): [string, string] => [name, 'it frames the message on each hop; meshward sets it'],
  ),
]);
const RESERVED_ON_REQUEST = new Map<string, string>([['host', 'the host is what routing and the policy matched']]);

function reservedReason(name: string, side: 'request' | 'response'): string | undefined {
  const spelled = name.toLowerCase().replaceAll('_', '-');
  return RESERVED.get(spelled) ?? (side === 'request' ? RESERVED_ON_REQUEST.get(spelled) : undefined);
}

const headerName = z
  .string()
  .regex(NAME, 'must be a header name')
  .transform((name) => name.toLowerCase());

function sideSchema(side: 'request' | 'response') {
  const writable = headerName.superRefine((name, ctx) => {
    const reason = reservedReason(name, side);
    if (reason !== undefined) ctx.addIssue({ code: 'custom', message: `"${name}" cannot be changed: ${reason}` });
  });
  const values = z.record(writable, z.string().regex(VALUE, 'must not contain CR, LF or NUL'));
  return strictObject({
    set: values.default({}),
    append: values.default({}),
    remove: z.array(writable).default([]),
  });
}

const settings = strictObject({
  request: sideSchema('request').optional(),
  response: sideSchema('response').optional(),
  /**
   * nosniff, `referrer-policy: no-referrer` and (on a listener that terminates TLS) HSTS, each unless the app set its
   * own; `server` and `x-powered-by` removed. The `response` edits run after it, so they can override it.
   */
  securityHeaders: z.boolean().default(false),
});

export type HeadersSettings = z.output<typeof settings>;
type Side = NonNullable<HeadersSettings['response']>;

const HSTS = 'max-age=31536000; includeSubDomains';

/** The preset, on a response's headers. */
export function applySecurityHeaders(headers: FilterResponse['headers'], tls: boolean): void {
  delete headers.server;
  delete headers['x-powered-by'];
  headers['x-content-type-options'] ??= 'nosniff';
  headers['referrer-policy'] ??= 'no-referrer';
  if (tls) headers['strict-transport-security'] ??= HSTS;
}

export function editResponseHeaders(headers: FilterResponse['headers'], edits: Side): void {
  for (const name of edits.remove) delete headers[name];
  Object.assign(headers, edits.set);
  for (const [name, value] of Object.entries(edits.append)) {
    const current = headers[name];
    headers[name] = current === undefined ? value : [...(Array.isArray(current) ? current : [current]), value];
  }
}

export const headers: FilterFactory<HeadersSettings> = {
  name: 'headers',
  settings,
  create(config, env) {
    const { request, response, securityHeaders } = config;
    return {
      name: 'headers',
      onRequest: request
        ? (ctx) => {
            // Every spelling: a header removed or replaced must not reach the app as x_user for x-user.
            for (const name of request.remove) for (const spelled of headerSpellings(ctx.rawHeaders, name)) removeRequestHeader(ctx, spelled);
            for (const [name, value] of Object.entries(request.set)) {
              for (const spelled of headerSpellings(ctx.rawHeaders, name)) removeRequestHeader(ctx, spelled);
              setRequestHeader(ctx, name, value);
            }
            for (const [name, value] of Object.entries(request.append)) appendRequestHeader(ctx, name, value);
            return undefined;
          }
        : undefined,
      onResponse: (_ctx, answer) => {
        if (securityHeaders) applySecurityHeaders(answer.headers, env.tls);
        if (response) editResponseHeaders(answer.headers, response);
      },
    };
  },
};

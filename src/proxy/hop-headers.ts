import { IDENTITY_HEADERS, SET_BY_MESHWARD } from '../filters/identity-headers.js';

// Which request and response headers cross a hop. Pure.
//
// Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and never cross: the fixed list plus every name the
// Connection header lists. The identity headers meshward sets are removed from whatever a client sent, so that no
// caller can forge them (filters/identity-headers.ts). A name spelled with underscores for one of the headers
// meshward sets (`x_forwarded_client_cert`) never crosses either, whatever `headersWithUnderscores` says.

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
]);

export interface ForwardOptions {
  /** Keep `te: trailers` (gRPC needs it over HTTP/2; HTTP/1.1 apps do not). */
  keepTeTrailers: boolean;
  /** Remove the identity headers (inbound: always; outbound: the next hop removes them anyway). */
  stripIdentity: boolean;
  /** Further names to drop (lower case). */
  remove?: readonly string[];
}

/**
 * Node's flat `rawHeaders` ([name, value, name, value, ...], names as sent) → the flat list to send upstream:
 * no pseudo-headers, no hop-by-hop headers, no identity headers. A `host` is kept as sent.
 */
export function forwardedRequestHeaders(raw: readonly string[], options: ForwardOptions): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'te' && options.keepTeTrailers && raw[i + 1]!.trim().toLowerCase() === 'trailers') out.push('te', 'trailers');
      continue;
    }
    if (options.stripIdentity && IDENTITY_HEADERS.has(lower)) continue;
    if (lower.includes('_') && SET_BY_MESHWARD.has(lower.replaceAll('_', '-'))) continue;
    if (listed !== undefined && listed.has(lower)) continue;
    if (options.remove !== undefined && options.remove.includes(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** Response headers from upstream (lower-case keys, as undici and node:http2 give them) → what the client gets. */
export function forwardedResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = headers.connection === undefined ? undefined : tokens(String(headers.connection));
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a || HOP_BY_HOP.has(name)) continue;
    if (listed !== undefined && listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== 'connection') continue;
    for (const t of tokens(raw[i + 1]!)) (listed ??= new Set()).add(t);
  }
  return listed;
}

const NO_TOKENS: ReadonlySet<string> = new Set();

function tokens(value: string): ReadonlySet<string> {
  // Nearly every Connection header is one of these, and neither names a header that is not hop-by-hop already.
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return NO_TOKENS;
  return new Set(lower.split(',').map((t) => t.trim()).filter((t) => t !== ''));
}

import { isIPv6 } from 'node:net';
import type { PatternResult } from './pattern-result.js';

// Hosts compare without case and without port, and `orders.` (the fully qualified spelling) is `orders`.

const HOSTNAME = /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/;
const BRACKETED_IPV6 = /^\[[0-9a-f:.]+\]$/;

/** The comparable form of a Host / :authority value as received: lower case, no port, no trailing dot. */
export function normaliseRequestHost(host: string): string {
  let h = host;
  if (h.charCodeAt(0) === 0x5b) {
    const close = h.indexOf(']');
    if (close !== -1) h = h.slice(0, close + 1);
  } else {
    const colon = h.indexOf(':');
    // More than one colon without brackets is a bare IPv6 address, which has no port to strip.
    if (colon !== -1 && h.indexOf(':', colon + 1) === -1) h = h.slice(0, colon);
  }
  if (h.length > 1 && h.charCodeAt(h.length - 1) === 0x2e) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** Validates a host named in a policy and returns its comparable form. */
export function parsePolicyHost(source: string): PatternResult<string> {
  const host = source.toLowerCase().replace(/\.$/, '');
  if (BRACKETED_IPV6.test(host)) return { ok: true, value: host };
  if (host.includes(':')) return { ok: false, error: `"${source}" is not a host name: leave the port out (match ports with to.ports)` };
  if (host.includes('*')) return { ok: false, error: `"${source}" is not a host name: wildcards are not supported in hosts` };
  if (!HOSTNAME.test(host)) return { ok: false, error: `"${source}" is not a host name` };
  return { ok: true, value: host };
}

export function mustParsePolicyHosts(sources: readonly string[]): string[] {
  return sources.map((source) => {
    const parsed = parsePolicyHost(source);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

// RFC 3986 authority without userinfo, as HTTP allows it in Host and :authority (RFC 9110 7.2): a reg-name of
// unreserved characters, an IPv4 address, or a bracketed IPv6 literal; then an optional numeric port in range.
// Stricter than the RFC on purpose: percent-encoding and sub-delims (`!$&'()*+,;=`) in a host name are refused, as
// are `@`, `/`, `?`, `#` and `\`, which URL parsers downstream read as userinfo or path and so as another host.
const AUTHORITY = /^(?:([A-Za-z0-9._~-]{1,253})|\[([0-9A-Fa-f:.]{2,45})\])(?::([0-9]{1,5}))?$/;

/**
 * Checks a Host / :authority value as received. Every listener, and the engine for ext_authz callers, refuses a
 * request whose authority fails this, so that the host a policy judges is the host every URL parser reads.
 */
export function checkAuthority(value: string): PatternResult<string> {
  const match = AUTHORITY.exec(value);
  const printable = JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (match === null) return { ok: false, error: `the authority ${printable} is not HOST[:PORT]` };
  if (match[2] !== undefined && !isIPv6(match[2])) return { ok: false, error: `the authority ${printable} has no valid IPv6 address in its brackets` };
  if (match[3] !== undefined) {
    const port = Number(match[3]);
    if (port < 1 || port > 65535) return { ok: false, error: `the authority ${printable} has a port out of range (1-65535)` };
  }
  return { ok: true, value };
}

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

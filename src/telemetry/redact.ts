// Redaction by value, for what field-name redaction (pino's `redact` paths) cannot catch: a JWT inside any
// header or message, a credential in a query string, a PEM private key pasted into an error. Pure.

const PATTERNS: [RegExp, string][] = [
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, '[redacted private key]'],
  // A JWS/JWT: three base64url parts, the first a JSON header ("eyJ" is base64 for '{"').
  [/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, '[redacted jwt]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/([?&;](?:access_token|id_token|refresh_token|token|api_key|apikey|api-key|key|password|secret|sig|signature)=)[^&#\s"']*/gi, '$1[redacted]'],
];

// Cheap pre-check so that ordinary strings (most of them) skip the regexes.
const SUSPECT = /PRIVATE KEY|eyJ|bearer|basic|token|key|password|secret|sig/i;

export function redactString(value: string): string {
  if (!SUSPECT.test(value)) return value;
  let out = value;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Returns `value` with every string inside redacted; objects are copied only where something changed. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) {
    // Still an Error, so the logger's error serializer keeps its type and stack.
    const copy = new Error(redactString(value.message));
    copy.name = value.name;
    copy.stack = value.stack === undefined ? '' : redactString(value.stack);
    for (const [k, v] of Object.entries(value)) (copy as unknown as Record<string, unknown>)[k] = redactValue(v, depth + 1);
    return copy;
  }
  if (Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const r = redactValue(v, depth + 1);
      if (r !== v) changed = true;
      return r;
    });
    return changed ? out : value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = redactValue(v, depth + 1);
    if (r !== v) (copy ??= { ...(value as Record<string, unknown>) })[k] = r;
  }
  return copy ?? value;
}

/** A request path without its query string: queries can carry credentials, and no audit record or span keeps one. */
export function withoutQuery(path: string): string {
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}

// Redaction by value, for what field-name redaction (pino's `redact` paths) cannot catch: a JWT inside any
// header, path or message, a credential passed as a URL parameter, a PEM private key pasted into an error. Pure.

// URL parameters whose value is a credential, by name once percent-decoded, lower-cased and stripped of "-", "_"
// and "." (so `Client_Secret`, `client%5Fsecret` and `client-secret` are one name): OAuth2 / OpenID Connect
// (client_secret, code, refresh_token, id_token, access_token, assertion, client_assertion, code_verifier,
// device_code, subject_token, ...), API keys, passwords, signed-URL signatures and session ids.
const SECRET_PARAM_NAMES = new Set(['code', 'devicecode', 'usercode', 'otp', 'auth', 'authorization', 'session', 'sid', 'samlresponse']);
const SECRET_PARAM_SUFFIX = /(?:token|secret|password|passwd|pwd|passphrase|assertion|verifier|credentials?|key|signature|sig|sessionid|sessid)$/;

function isSecretParam(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // Not valid percent-encoding: judged as written.
  }
  const normal = decoded.toLowerCase().replace(/[-_.]/g, '');
  return SECRET_PARAM_NAMES.has(normal) || SECRET_PARAM_SUFFIX.test(normal);
}

// NAME=VALUE wherever a parameter can stand: after `?`, `&`, `;` (a path parameter), `/` (a path segment), `#` or
// white space. The value runs to the next parameter separator; `/` and `?` stay in it, as a secret may hold them.
const PARAM = /(?<![\w.%~+-])([\w.%~+-]+)=([^&;#\s"'<>]+)/g;

// In this order: a bearer credential before parameters (`authorization=Bearer x` must lose `x` too), parameters
// before JWTs (a JWT under a secret name goes with its name's redaction, not beside it).
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g;
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
// A JWS or JWE: base64url parts, the first a JSON header ("eyJ" is base64 for '{"'), its dots possibly encoded.
const JWT = /eyJ[A-Za-z0-9_-]{4,}(?:(?:\.|%2[Ee])[A-Za-z0-9_-]*){2,4}/g;

// Cheap pre-check so that ordinary strings (most of them) skip the regexes.
const SUSPECT = /PRIVATE KEY|eyJ|bearer|basic|=/i;

export function redactString(value: string): string {
  if (!SUSPECT.test(value)) return value;
  return value
    .replace(PEM_PRIVATE_KEY, '[redacted private key]')
    .replace(AUTH_SCHEME, '$1 [redacted]')
    .replace(PARAM, (match: string, name: string) => (isSecretParam(name) ? `${name}=[redacted]` : match))
    .replace(JWT, '[redacted jwt]');
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
  // Every audit record and log line comes through here: keys, not entries, so that an unchanged object costs one
  // array rather than one per member.
  const object = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const k of Object.keys(object)) {
    const v = object[k];
    const r = redactValue(v, depth + 1);
    if (r !== v) (copy ??= { ...object })[k] = r;
  }
  return copy ?? value;
}

/**
 * A request path as audit records and spans keep it: without its query string (no query is kept: one can carry
 * any credential under any name), and with credentials in the path itself redacted (a JWT as a segment, a
 * `;access_token=` parameter, a `client_secret=` segment).
 */
export function redactedPath(path: string): string {
  const query = path.indexOf('?');
  return redactString(query === -1 ? path : path.slice(0, query));
}

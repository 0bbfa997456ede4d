// Request-target normalisation. Policy matching must see exactly one spelling of every path, or a deny rule can be
// walked around (`/api/../admin`, `/%61dmin`, `//admin`). Anything that cannot be reduced to one spelling safely is
// refused (400) rather than guessed at: encoded slashes and backslashes (servers disagree on whether they split
// segments), NULs, broken percent-encoding, fragments and targets that are not in origin form.

export type NormalisedTarget =
  | {
      ok: true;
      /** The normalised path, without query; keeps a trailing slash if the target had one. */
      path: string;
      /** The query string including its leading `?`, or '' when there is none. */
      query: string;
      /** The path's segments, for pattern matching. A trailing slash adds no segment. */
      segments: readonly string[];
    }
  | { ok: false; reason: string };

const HEX = '0123456789ABCDEF';

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". Only these decode; everything else stays encoded.
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

function refuse(reason: string): NormalisedTarget {
  return { ok: false, reason };
}

/** Checks every character of the target (the path ends at `pathEnd`); returns why it is refused, or undefined. */
function findForbiddenCharacter(target: string, pathEnd: number): string | undefined {
  for (let i = 0; i < target.length; i++) {
    const code = target.charCodeAt(i);
    if (code > 0x20 && code < 0x7f && code !== 0x23 && code !== 0x5c) continue;
    if (code === 0x5c) {
      // A backslash in the query is data; in the path some servers read it as a separator.
      if (i < pathEnd) return 'the path contains a backslash';
      continue;
    }
    if (code === 0) return 'the request target contains a NUL';
    if (code === 0x20) return 'the request target contains a space';
    if (code === 0x23) return 'the request target contains a fragment ("#")';
    if (code < 0x20 || code === 0x7f) return 'the request target contains a control character';
    return 'the request target contains a non-ASCII character';
  }
  return undefined;
}

/** Decodes the unreserved characters of a path and upper-cases the hex of the rest; refuses what must not pass. */
function decodePath(path: string): { ok: true; value: string } | { ok: false; reason: string } {
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i)) {
    const hi = i + 1 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const lo = i + 2 < path.length ? hexValue(path.charCodeAt(i + 2)) : -1;
    if (hi < 0 || lo < 0) return { ok: false, reason: `invalid percent-encoding "${path.slice(i, i + 3)}" in the path` };
    const byte = hi * 16 + lo;
    if (byte === 0x2f) return { ok: false, reason: 'the path contains an encoded slash (%2F)' };
    if (byte === 0x5c) return { ok: false, reason: 'the path contains an encoded backslash (%5C)' };
    if (byte === 0) return { ok: false, reason: 'the path contains an encoded NUL (%00)' };
    out += path.slice(from, i);
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[hi]}${HEX[lo]}`;
    i += 3;
    from = i;
  }
  return { ok: true, value: from === 0 ? path : out + path.slice(from) };
}

/**
 * Normalises a request target (`/a/./b/../c?x=1`) for policy matching: percent-decodes unreserved characters,
 * resolves `.` and `..` (never above the root) and merges repeated slashes. Pure.
 */
export function normalisePath(target: string): NormalisedTarget {
  if (typeof target !== 'string' || target.length === 0) return refuse('the request target is empty');
  if (target.charCodeAt(0) !== 0x2f) {
    return refuse('the request target is not in origin form (it must start with "/")');
  }
  const question = target.indexOf('?');
  const end = question === -1 ? target.length : question;
  const forbidden = findForbiddenCharacter(target, end);
  if (forbidden) return refuse(forbidden);

  const rawPath = end === target.length ? target : target.slice(0, end);
  const query = end === target.length ? '' : target.slice(end);
  const decoded = decodePath(rawPath);
  if (!decoded.ok) return refuse(decoded.reason);

  const parts = decoded.value.split('/');
  const segments: string[] = [];
  let changed = decoded.value !== rawPath;
  let trailingSlash = false;
  // parts[0] is the empty string before the leading slash.
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    if (part === '' || part === '.' || part === '..') {
      if (part === '..') segments.pop();
      // An empty last part is just a trailing slash; any other empty, "." or ".." part rewrites the path.
      if (last) trailingSlash = true;
      if (part !== '' || !last) changed = true;
      continue;
    }
    segments.push(part);
  }
  if (!changed) return { ok: true, path: decoded.value, query, segments };
  const joined = `/${segments.join('/')}`;
  const path = trailingSlash && segments.length > 0 ? `${joined}/` : joined;
  return { ok: true, path, query, segments };
}

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
 * A `.` or `..` segment with path parameters (`/public/..;x/admin`, `/.;/admin`): Tomcat, Jetty and Spring drop the
 * parameters and then resolve the dot segment, so the app serves `/admin` where a policy saw a path under `/public`;
 * other servers keep `..;x` as a name. No spelling is safe to assume, so such a path is refused.
 */
function hasDotSegmentWithParameters(path: string): boolean {
  for (let semi = path.indexOf(';'); semi !== -1; semi = path.indexOf(';', semi + 1)) {
    const start = path.lastIndexOf('/', semi - 1) + 1;
    const name = path.slice(start, semi);
    if (name === '.' || name === '..') return true;
  }
  return false;
}

/** Whether `path` (no query, already decoded) has a repeated slash or a `.` or `..` segment to resolve. */
function needsResolving(path: string): boolean {
  // `start` is where the current segment begins, just after its slash.
  let start = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) continue;
    const length = i - start;
    // An empty last segment is just a trailing slash, which stays.
    if (length === 0 && i < path.length) return true;
    if (length === 1 && path.charCodeAt(start) === 0x2e) return true;
    if (length === 2 && path.charCodeAt(start) === 0x2e && path.charCodeAt(start + 1) === 0x2e) return true;
    start = i + 1;
  }
  return false;
}

// Segments kept while resolving, as [start, end) offsets into the path: two numbers per segment rather than a
// substring each. Module-level and reused because resolving is synchronous and never re-enters.
const kept: number[] = [];

/**
 * Resolves `.` and `..` (never above the root) and merges repeated slashes. Keeps a trailing slash, also the one a
 * final `.` or `..` leaves (`/a/b/..` is `/a/`), except at the root.
 */
function resolveSegments(path: string): string {
  let count = 0;
  let trailingSlash = false;
  let start = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) continue;
    const length = i - start;
    const dot = length >= 1 && length <= 2 && path.charCodeAt(start) === 0x2e && (length === 1 || path.charCodeAt(start + 1) === 0x2e);
    if (length === 0 || dot) {
      if (length === 2 && count > 0) count -= 2;
      if (i === path.length) trailingSlash = true;
    } else {
      kept[count++] = start;
      kept[count++] = i;
    }
    start = i + 1;
  }
  if (count === 0) return '/';
  // Copy runs of segments that were adjacent in the input in one slice each (with the slash before them).
  let out = '';
  let runStart = kept[0]! - 1;
  for (let k = 2; k < count; k += 2) {
    if (kept[k]! === kept[k - 1]! + 1) continue;
    out += path.slice(runStart, kept[k - 1]!);
    runStart = kept[k]! - 1;
  }
  out += path.slice(runStart, kept[count - 1]!);
  return trailingSlash ? `${out}/` : out;
}

/**
 * The normalised path of a request target, without its query, or why the target is refused. This is what a decision
 * needs of `normalisePath`, without the segments and the result object it would allocate on every request.
 */
export function normaliseTargetPath(target: string): string | { readonly reason: string } {
  if (typeof target !== 'string' || target.length === 0) return { reason: 'the request target is empty' };
  if (target.charCodeAt(0) !== 0x2f) return { reason: 'the request target is not in origin form (it must start with "/")' };
  const question = target.indexOf('?');
  const end = question === -1 ? target.length : question;
  const forbidden = findForbiddenCharacter(target, end);
  if (forbidden) return { reason: forbidden };
  let path = end === target.length ? target : target.slice(0, end);
  if (path.indexOf('%') !== -1) {
    const decoded = decodePath(path);
    if (!decoded.ok) return { reason: decoded.reason };
    path = decoded.value;
  }
  if (path.indexOf(';') !== -1 && hasDotSegmentWithParameters(path)) {
    return { reason: 'the path has a dot segment with parameters (";" after "." or ".."), which some servers resolve as ".."' };
  }
  return needsResolving(path) ? resolveSegments(path) : path;
}

/** The segments of a normalised path: none for `/`, and a trailing slash adds none. */
export function pathSegments(path: string): string[] {
  const end = path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.length - 1 : path.length;
  return end <= 1 ? [] : path.slice(1, end).split('/');
}

/**
 * Normalises a request target (`/a/./b/../c?x=1`) for policy matching: percent-decodes unreserved characters,
 * resolves `.` and `..` (never above the root) and merges repeated slashes. Pure.
 */
export function normalisePath(target: string): NormalisedTarget {
  const path = normaliseTargetPath(target);
  if (typeof path !== 'string') return refuse(path.reason);
  const question = target.indexOf('?');
  return { ok: true, path, query: question === -1 ? '' : target.slice(question), segments: pathSegments(path) };
}

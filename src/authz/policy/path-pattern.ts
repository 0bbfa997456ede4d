import { normalisePath } from './path-normalise.js';
import type { PatternResult } from './pattern-result.js';
import { flatString } from './string-pool.js';
import { listHas, toValueList, type ValueList } from './value-list.js';

// Path patterns: `*` is exactly one segment, `**` any number of segments (none included, so `/admin/**` also covers
// `/admin`), anything else a literal segment. Patterns are normalised like request paths so that `/%7Euser` and
// `/~user` are the same pattern. A trailing slash is not significant on either side: `/admin/` is `/admin`.

const ONE = '*';
const ANY = '**';

export interface PathPattern {
  readonly source: string;
  readonly kind: 'exact' | 'prefix' | 'glob';
  /** exact: the normalised path; prefix: the literal part before a final `/**`, without that slash. */
  readonly literal: string;
  /** Normalised segments; `*` and `**` are wildcards. */
  readonly segments: readonly string[];
  /** The first segment when it is literal ('' for the root pattern `/`); undefined when it is a wildcard. */
  readonly firstSegment: string | undefined;
}

export function parsePathPattern(source: string): PatternResult<PathPattern> {
  const fail = (why: string): PatternResult<PathPattern> => ({ ok: false, error: `"${source}" is not a valid path pattern: ${why}` });
  if (!source.startsWith('/')) return fail('it must start with "/"');
  if (source.includes('?')) return fail('a query is not matched; remove it');
  const normalised = normalisePath(source);
  if (!normalised.ok) return fail(normalised.reason);
  if (source !== '/') {
    const parts = source.slice(1).split('/');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part === '') {
        return fail(i === parts.length - 1 ? 'it must not end with "/" (use "/x" or "/x/**")' : 'it has an empty segment ("//")');
      }
      const decoded = normalisePath(`/${part}`);
      if (decoded.ok && decoded.segments.length !== 1) return fail('"." and ".." segments are not allowed');
      if (part.includes('*') && part !== ONE && part !== ANY) return fail(`"*" and "**" must be whole segments, not "${part}"`);
    }
  }
  const segments = normalised.segments;
  const first = segments[0];
  const firstSegment = first === undefined ? '' : first === ONE || first === ANY ? undefined : first;
  const wildcards = segments.filter((s) => s === ONE || s === ANY).length;
  if (wildcards === 0) return { ok: true, value: { source, kind: 'exact', literal: normalised.path, segments, firstSegment } };
  if (wildcards === 1 && segments[segments.length - 1] === ANY) {
    const literal = segments.length === 1 ? '' : `/${segments.slice(0, -1).join('/')}`;
    return { ok: true, value: { source, kind: 'prefix', literal, segments, firstSegment } };
  }
  return { ok: true, value: { source, kind: 'glob', literal: normalised.path, segments, firstSegment } };
}

/**
 * Matches `segments` from index `from` against a pattern: `*` one segment, `**` any run; backtracks only to the
 * last `**`.
 */
export function matchGlobSegments(pattern: readonly string[], segments: readonly string[], from = 0): boolean {
  let p = 0;
  let s = from;
  let anyAt = -1;
  let anyFrom = 0;
  while (s < segments.length) {
    const want = pattern[p];
    if (want === ANY) {
      anyAt = p++;
      anyFrom = s;
    } else if (want !== undefined && (want === ONE || want === segments[s])) {
      p++;
      s++;
    } else if (anyAt !== -1) {
      p = anyAt + 1;
      s = ++anyFrom;
    } else {
      return false;
    }
  }
  while (pattern[p] === ANY) p++;
  return p === pattern.length;
}

/** A glob split at its first wildcard: a literal path prefix checked with one `startsWith`, then the rest. */
interface Glob {
  /** `/a/b/` for `/a/b/*\/c`; `/` when the pattern starts with a wildcard. */
  readonly literal: string;
  /** How many segments `literal` holds. */
  readonly literalSegments: number;
  /** The pattern's segments from the first wildcard on. */
  readonly rest: readonly string[];
}

function toGlob(pattern: PathPattern): Glob {
  const firstWildcard = pattern.segments.findIndex((s) => s === ONE || s === ANY);
  const head = pattern.segments.slice(0, firstWildcard);
  return {
    literal: head.length === 0 ? '' : flatString(`/${head.join('/')}`),
    literalSegments: head.length,
    rest: pattern.segments.slice(firstWildcard),
  };
}

function startsWithSegment(path: string, prefix: string): boolean {
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f);
}

/** `path` is `parent` + `/` + one more non-empty segment. */
function isChildOf(path: string, parent: string): boolean {
  return (
    path.length > parent.length + 1 &&
    path.charCodeAt(parent.length) === 0x2f &&
    path.startsWith(parent) &&
    path.indexOf('/', parent.length + 1) === -1
  );
}

/** How a path may stand to a literal `/x`, one bit each: `/x` itself, one level below (`/x/*`), at or below (`/x/**`). */
export const LiteralKind = { exact: 1, child: 2, prefix: 4 } as const;

/** `kinds` is a set of LiteralKind bits; `path` a normalised path without a trailing slash. */
export function matchesLiteral(path: string, literal: string, kinds: number): boolean {
  if ((kinds & LiteralKind.exact) !== 0 && path === literal) return true;
  if ((kinds & LiteralKind.prefix) !== 0 && startsWithSegment(path, literal)) return true;
  return (kinds & LiteralKind.child) !== 0 && isChildOf(path, literal);
}

/** A normalised path without a trailing slash (`/` for the root), and its segments. */
export interface PathFacts {
  readonly path: string;
  readonly segments: readonly string[];
}

/**
 * A compiled list of path patterns, by kind, cheapest first: exact paths (`/a/b`), prefixes (`/a/**`), children
 * (`/a/*`), and other globs. All but the last are a comparison or two against one string.
 */
export class PathMatcher {
  // null rather than empty, so a decision does not touch (and pull into cache) what it does not need.
  private readonly exact: ValueList<string> | null;
  /** Literal parts of `/x/**` patterns, without the trailing slash ('' for `/**`). */
  private readonly prefixes: ValueList<string> | null;
  /** Literal parts of `/x/*` patterns, without the trailing slash ('' for `/*`). */
  private readonly children: ValueList<string> | null;
  private readonly globs: readonly Glob[] | null;
  /**
   * When every pattern is `/x`, `/x/*` or `/x/**` for one `/x` (most lists are): that literal and its LiteralKind
   * bits, which a rule can hold itself and test without reading this matcher; else null and 0.
   */
  readonly literal: string | null = null;
  readonly literalKinds: number = 0;

  constructor(readonly sources: readonly string[]) {
    const patterns = mustParsePathPatterns(sources);
    const isChildren = (p: PathPattern) =>
      p.kind === 'glob' && p.segments[p.segments.length - 1] === ONE && p.segments.indexOf(ONE) === p.segments.length - 1 && !p.segments.includes(ANY);
    // Patterns often share their literal part (`/x` and `/x/*`). Held as one string, it is one cold read, not two; and
    // a flat one, for a literal built by joining segments is a rope, which a comparison reads through another object.
    const pooled = new Map<string, string>();
    const pool = (literal: string) => {
      let flat = pooled.get(literal);
      if (flat === undefined) pooled.set(literal, (flat = flatString(literal)));
      return flat;
    };
    const exact = patterns.filter((p) => p.kind === 'exact').map((p) => pool(p.literal));
    const prefixes = patterns.filter((p) => p.kind === 'prefix').map((p) => pool(p.literal));
    const children = patterns.filter(isChildren).map((p) => pool(toGlob(p).literal));
    const globs = patterns.filter((p) => p.kind === 'glob' && !isChildren(p)).map(toGlob);
    this.exact = exact.length > 0 ? toValueList(exact) : null;
    this.prefixes = prefixes.length > 0 ? toValueList(prefixes) : null;
    this.children = children.length > 0 ? toValueList(children) : null;
    this.globs = globs.length > 0 ? globs : null;
    const literals = new Set([...exact, ...prefixes, ...children]);
    if (globs.length === 0 && literals.size === 1) {
      this.literal = [...literals][0]!;
      this.literalKinds =
        (exact.length > 0 ? LiteralKind.exact : 0) | (children.length > 0 ? LiteralKind.child : 0) | (prefixes.length > 0 ? LiteralKind.prefix : 0);
    }
  }

  /** `path` is the normalised path without a trailing slash (`/` for the root); `segments` its segments. */
  matches(path: string, segments: readonly string[]): boolean {
    return this.matchesPathOf({ path, segments });
  }

  /** The same for a request whose segments are split only if a glob needs them (see MatchContext). */
  matchesPathOf(request: PathFacts): boolean {
    const path = request.path;
    if (this.exact !== null && listHas(this.exact, path)) return true;
    const { prefixes, children, globs } = this;
    if (prefixes !== null) {
      if (typeof prefixes === 'string') {
        if (startsWithSegment(path, prefixes)) return true;
      } else {
        for (const prefix of prefixes as Iterable<string>) if (startsWithSegment(path, prefix)) return true;
      }
    }
    if (children !== null) {
      if (typeof children === 'string') {
        if (isChildOf(path, children)) return true;
      } else {
        for (const parent of children as Iterable<string>) if (isChildOf(path, parent)) return true;
      }
    }
    if (globs !== null) {
      for (let i = 0; i < globs.length; i++) {
        const glob = globs[i]!;
        if (startsWithSegment(path, glob.literal) && matchGlobSegments(glob.rest, request.segments, glob.literalSegments)) return true;
      }
    }
    return false;
  }
}

export function mustParsePathPatterns(sources: readonly string[]): PathPattern[] {
  return sources.map((source) => {
    const parsed = parsePathPattern(source);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

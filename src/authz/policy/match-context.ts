import { parseIpAddress, type IpAddress } from './ip-block.js';
import { pathSegments } from './path-normalise.js';

/** The facts about one request that rules test, already normalised. Built once per decision. */
export interface MatchFacts {
  readonly principal: string | undefined;
  readonly sourceIp: string | undefined;
  readonly port: number | undefined;
  /** Upper case. */
  readonly method: string;
  /** methodBit(method), so that rules test a method with one AND. */
  readonly methodBit: number;
  /** Lower case, no port, no trailing dot. */
  readonly host: string;
  /** The normalised path without a trailing slash (`/` for the root). */
  readonly path: string;
  /** The path's segments; derived from `path` when not given. */
  readonly segments?: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  readonly context: Readonly<Record<string, string>> | undefined;
  /** Verified JWT claims; undefined when no token was presented. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
}

export class MatchContext implements MatchFacts {
  readonly principal: string | undefined;
  readonly sourceIp: string | undefined;
  readonly port: number | undefined;
  readonly method: string;
  readonly methodBit: number;
  readonly host: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly context: Readonly<Record<string, string>> | undefined;
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  private parsedAddress: IpAddress | undefined | null = null;
  // Only glob patterns read segments, and few rules have globs, so a decision does not split its path up front.
  private splitPath: readonly string[] | undefined;

  constructor(facts: MatchFacts) {
    this.principal = facts.principal;
    this.sourceIp = facts.sourceIp;
    this.port = facts.port;
    this.method = facts.method;
    this.methodBit = facts.methodBit;
    this.host = facts.host;
    this.path = facts.path;
    this.splitPath = facts.segments;
    this.headers = facts.headers;
    this.context = facts.context;
    this.claims = facts.claims;
  }

  get segments(): readonly string[] {
    return (this.splitPath ??= pathSegments(this.path));
  }

  /** The first segment ('' for the root), which the rule index looks rules up by. */
  get firstSegment(): string {
    if (this.splitPath !== undefined) return this.splitPath[0] ?? '';
    const end = this.path.indexOf('/', 1);
    return this.path.slice(1, end === -1 ? this.path.length : end);
  }

  /** The source address, parsed on first use: most decisions never look at it. */
  get address(): IpAddress | undefined {
    if (this.parsedAddress === null) this.parsedAddress = parseIpAddress(this.sourceIp);
    return this.parsedAddress;
  }
}

/** Reads a string-valued entry; inherited properties (`constructor`, `__proto__`) are never entries. */
export function ownString(record: Readonly<Record<string, unknown>> | undefined, key: string): string | undefined {
  if (record === undefined || !Object.hasOwn(record, key)) return undefined;
  const value = record[key];
  return typeof value === 'string' ? value : undefined;
}

/** Follows a dotted claim path through own properties only. */
export function claimAt(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): unknown {
  let value: unknown = claims;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

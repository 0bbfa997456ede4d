import type { ConditionKey } from './condition-key.js';
import { IpBlockMatcher } from './ip-block.js';
import { claimAt, ownString, type MatchContext } from './match-context.js';
import { PrincipalMatcher } from './principal-pattern.js';
import { listHas, toValueList, type ValueList } from './value-list.js';

// One `when` condition: a request attribute (header, JWT claim, source address or principal, context extension)
// must take one of the listed values.

// `scope` (RFC 8693) and `scp` carry several values in one space-separated string.
const SPACE_SEPARATED_CLAIMS = new Set(['scope', 'scp']);

function claimContains(claim: unknown, values: ValueList<string>, spaceSeparated: boolean): boolean {
  if (typeof claim === 'string') {
    if (listHas(values, claim)) return true;
    return spaceSeparated && claim.split(' ').some((part) => listHas(values, part));
  }
  if (typeof claim === 'number' || typeof claim === 'boolean') return listHas(values, String(claim));
  if (Array.isArray(claim)) return claim.some((item) => item !== null && typeof item !== 'object' && listHas(values, String(item)));
  return false;
}

export class WhenCondition {
  // The key's parts are held inline rather than as the parsed key object: one memory read fewer per decision.
  private readonly kind: ConditionKey['kind'];
  /** Header or context-extension name. */
  private readonly name: string;
  private readonly claimPath: readonly string[];
  private readonly values: ValueList<string>;
  private readonly blocks: IpBlockMatcher | undefined;
  private readonly principals: PrincipalMatcher | undefined;
  private readonly spaceSeparated: boolean;

  constructor(
    /** e.g. `when[0] request.headers[x-tenant]` */
    readonly field: string,
    key: ConditionKey,
    readonly listed: readonly string[],
  ) {
    this.kind = key.kind;
    this.name = key.kind === 'header' || key.kind === 'context' ? key.name : '';
    this.claimPath = key.kind === 'claim' ? key.path : [];
    this.values = toValueList(listed);
    this.blocks = key.kind === 'sourceIp' ? new IpBlockMatcher(listed) : undefined;
    this.principals = key.kind === 'sourcePrincipal' ? new PrincipalMatcher(listed) : undefined;
    this.spaceSeparated = key.kind === 'claim' && SPACE_SEPARATED_CLAIMS.has(key.path[key.path.length - 1]!);
  }

  /** The attribute's value in this request, or undefined when the request does not carry it. */
  read(ctx: MatchContext): unknown {
    switch (this.kind) {
      case 'header':
        return ownString(ctx.headers, this.name);
      case 'context':
        return ownString(ctx.context, this.name);
      case 'claim':
        return claimAt(ctx.claims, this.claimPath);
      case 'sourceIp':
        return ctx.sourceIp;
      case 'sourcePrincipal':
        return ctx.principal;
    }
  }

  matches(ctx: MatchContext): boolean {
    const value = this.read(ctx);
    if (value === undefined) return false;
    switch (this.kind) {
      case 'claim':
        return claimContains(value, this.values, this.spaceSeparated);
      case 'sourceIp':
        return this.blocks!.contains(ctx.address);
      case 'sourcePrincipal':
        return this.principals!.matches(value as string);
      default:
        return listHas(this.values, value as string);
    }
  }

  /** What the request lacks when `read` finds nothing, for explanations. */
  get noun(): string {
    switch (this.kind) {
      case 'header':
        return `header "${this.name}"`;
      case 'context':
        return `context extension "${this.name}"`;
      case 'claim':
        return `JWT claim "${this.claimPath.join('.')}"`;
      case 'sourceIp':
        return 'source IP address';
      case 'sourcePrincipal':
        return 'principal';
    }
  }
}

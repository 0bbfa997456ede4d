import { mustParsePolicyHosts } from './host.js';
import { mustParsePathPatterns } from './path-pattern.js';
import { mustParsePrincipalPatterns } from './principal-pattern.js';
import { compileMatchSlots, type MatchSlots } from './rule-match.js';
import type { PolicyRateLimit, PolicyRule, RuleAction } from './schema.js';

/** The part a rule plays in a decision; a dry-run rule plays only "dry run", whatever its action. */
export const Role = { deny: 0, allow: 1, audit: 2, dryRun: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface CompiledRule extends MatchSlots {
  readonly name: string;
  readonly action: RuleAction;
  readonly dryRun: boolean;
  readonly role: Role;
  /** Position in the file: among several matching rules the first one decides. */
  readonly order: number;
}

export interface CompiledRateLimit extends MatchSlots {
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly per: PolicyRateLimit['per'];
}

/** The values a rule can only match under, per indexable request fact; see rule-index.ts. */
export interface IndexKeys {
  host?: readonly string[];
  principal?: readonly string[];
  pathRoot?: readonly string[];
  port?: readonly number[];
  method?: readonly string[];
}

// Compiled rules are built with the same property order so that they share one hidden class.
export function compileRule(rule: PolicyRule, order: number): CompiledRule {
  const role = rule.dryRun ? Role.dryRun : rule.action === 'deny' ? Role.deny : rule.action === 'allow' ? Role.allow : Role.audit;
  return { name: rule.name, action: rule.action, dryRun: rule.dryRun, role, order, ...compileMatchSlots(rule) };
}

export function compileRateLimit(limit: PolicyRateLimit): CompiledRateLimit {
  const { principals, methods, hosts, paths } = limit.match ?? {};
  return {
    name: limit.name,
    requestsPerSecond: limit.requestsPerSecond,
    // Without a burst, one second's worth of requests may arrive at once.
    burst: limit.burst ?? Math.max(1, Math.ceil(limit.requestsPerSecond)),
    per: limit.per,
    ...compileMatchSlots({ from: { principals }, to: { methods, hosts, paths } }),
  };
}

const given = <T>(list: readonly T[] | undefined): list is readonly T[] => list !== undefined && list.length > 0;

export function indexKeysOf(rule: PolicyRule): IndexKeys {
  const keys: IndexKeys = {};
  const { from, to } = rule;
  if (given(to?.hosts)) keys.host = mustParsePolicyHosts(to.hosts);
  if (given(from?.principals)) {
    const patterns = mustParsePrincipalPatterns(from.principals);
    if (patterns.every((p) => p.kind === 'exact')) keys.principal = patterns.map((p) => p.source);
  }
  if (given(to?.paths)) {
    const roots = mustParsePathPatterns(to.paths).map((p) => p.firstSegment);
    if (roots.every((r): r is string => r !== undefined)) keys.pathRoot = roots;
  }
  if (given(to?.ports)) keys.port = to.ports;
  if (given(to?.methods)) keys.method = to.methods;
  return keys;
}

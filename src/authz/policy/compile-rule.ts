import { mustParsePathPatterns } from './path-pattern.js';
import { mustParsePrincipalPatterns } from './principal-pattern.js';
import { compileMatchSlots, givenSlots, type MatchSlots, type SlotName } from './rule-match.js';
import type { SharedMatchers } from './shared-matchers.js';
import { flatString } from './string-pool.js';
import type { PolicyRateLimit, PolicyRule, RuleAction } from './schema.js';
import { listValues } from './value-list.js';

/** The part a rule plays in a decision; a dry-run rule plays only "dry run", whatever its action. */
export const Role = { deny: 0, allow: 1, audit: 2, dryRun: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface CompiledRule extends MatchSlots {
  readonly name: string;
  /** The reason a denial by this rule gives, made once rather than on every denial. */
  readonly denial: string;
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

export function compileRule(rule: PolicyRule, order: number, shared?: SharedMatchers): CompiledRule {
  const role = rule.dryRun ? Role.dryRun : rule.action === 'deny' ? Role.deny : rule.action === 'allow' ? Role.allow : Role.audit;
  const denial = flatString(`denied by rule "${rule.name}"`);
  return ruleRecord({ name: rule.name, denial, action: rule.action, dryRun: rule.dryRun, role, order }, compileMatchSlots(rule, shared));
}

/** The same rule without `slot`, for a rule index bucket that guarantees it: a decision need not read it. */
export function withoutSlot(rule: CompiledRule, slot: Exclude<SlotName, 'when'>): CompiledRule {
  const slots: MatchSlots = { ...rule, [slot]: null };
  return ruleRecord(rule, { ...slots, given: givenSlots(slots) });
}

type RuleHead = Pick<CompiledRule, 'name' | 'denial' | 'action' | 'dryRun' | 'role' | 'order'>;

// Every compiled rule comes from this one literal, so that all share one hidden class and keep every field in the
// object itself (built by spreading, most fields went to a separate property array: one more cold read per
// candidate). The fields a decision reads come first, the answer's own (name, denial) included, so that a candidate
// that decides usually costs two cache lines.
function ruleRecord(head: RuleHead, s: MatchSlots): CompiledRule {
  return {
    role: head.role,
    given: s.given,
    methods: s.methods,
    hosts: s.hosts,
    principals: s.principals,
    pathLiteral: s.pathLiteral,
    pathKinds: s.pathKinds,
    when: s.when,
    name: head.name,
    denial: head.denial,
    order: head.order,
    paths: s.paths,
    notMethods: s.notMethods,
    ports: s.ports,
    notHosts: s.notHosts,
    notPrincipals: s.notPrincipals,
    notPaths: s.notPaths,
    ipBlocks: s.ipBlocks,
    notIpBlocks: s.notIpBlocks,
    action: head.action,
    dryRun: head.dryRun,
  };
}

export function compileRateLimit(limit: PolicyRateLimit, shared?: SharedMatchers): CompiledRateLimit {
  const { principals, methods, hosts, paths } = limit.match ?? {};
  return {
    name: limit.name,
    requestsPerSecond: limit.requestsPerSecond,
    // Without a burst, one second's worth of requests may arrive at once.
    burst: limit.burst ?? Math.max(1, Math.ceil(limit.requestsPerSecond)),
    per: limit.per,
    ...compileMatchSlots({ from: { principals }, to: { methods, hosts, paths } }, shared),
  };
}

const given = <T>(list: readonly T[] | undefined): list is readonly T[] => list !== undefined && list.length > 0;

/**
 * `compiled` is compileRule(rule): its hosts are taken from there so that the index and the rule hold the same
 * string, and the index lookup that finds a request's host leaves it in cache for the rule's own host test.
 */
export function indexKeysOf(rule: PolicyRule, compiled: CompiledRule): IndexKeys {
  const keys: IndexKeys = {};
  const { from, to } = rule;
  if (compiled.hosts !== null) keys.host = listValues(compiled.hosts);
  if (given(from?.principals)) {
    const patterns = mustParsePrincipalPatterns(from.principals);
    if (patterns.every((p) => p.kind === 'exact')) keys.principal = patterns.map((p) => p.source);
  }
  if (given(to?.paths)) {
    const roots = mustParsePathPatterns(to.paths).map((p) => p.firstSegment);
    // A segment split off a longer string can be a slice of it; see string-pool.ts.
    if (roots.every((r): r is string => r !== undefined)) keys.pathRoot = roots.map(flatString);
  }
  if (given(to?.ports)) keys.port = to.ports;
  if (given(to?.methods)) keys.method = to.methods;
  return keys;
}

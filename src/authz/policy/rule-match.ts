import { parseConditionKey } from './condition-key.js';
import { mustParsePolicyHosts } from './host.js';
import { methodSetHas, methodSetValues, toMethodSet, type MethodSet } from './http-method.js';
import { IpBlockMatcher } from './ip-block.js';
import type { MatchContext } from './match-context.js';
import { PathMatcher } from './path-pattern.js';
import { PrincipalMatcher } from './principal-pattern.js';
import type { PolicyRule } from './schema.js';
import { listHas, listValues, toValueList, type ValueList } from './value-list.js';
import { WhenCondition } from './when-condition.js';

// What a rule (or a rate limit's `match`) requires of a request, compiled once into fixed slots: null when the
// policy did not give that field (an empty list counts as not given, so `notPaths: []` excludes nothing). Every
// compiled rule has the same shape and `slotsMatch` tests the slots in straight-line code, cheapest first, which
// keeps the per-candidate cost of a decision to a few lookups. `firstMismatch` walks the same slots, in the same
// order, to say why a rule did not match; it serves explanations only.

export interface MatchSlots {
  readonly methods: MethodSet | null;
  readonly notMethods: MethodSet | null;
  readonly ports: ValueList<number> | null;
  readonly hosts: ValueList<string> | null;
  readonly notHosts: ValueList<string> | null;
  readonly principals: PrincipalMatcher | null;
  readonly notPrincipals: PrincipalMatcher | null;
  readonly paths: PathMatcher | null;
  readonly notPaths: PathMatcher | null;
  readonly ipBlocks: IpBlockMatcher | null;
  readonly notIpBlocks: IpBlockMatcher | null;
  readonly when: readonly WhenCondition[] | null;
}

export type MatchSpec = Pick<PolicyRule, 'from' | 'to' | 'when'>;

const given = <T>(list: readonly T[] | undefined): list is readonly T[] => list !== undefined && list.length > 0;

function orNull<T, R>(list: readonly T[] | undefined, build: (list: readonly T[]) => R): R | null {
  return given(list) ? build(list) : null;
}

export function compileMatchSlots({ from, to, when }: MatchSpec): MatchSlots {
  return {
    methods: orNull(to?.methods, toMethodSet),
    notMethods: orNull(to?.notMethods, toMethodSet),
    ports: orNull(to?.ports, (l) => toValueList(l)),
    hosts: orNull(to?.hosts, (l) => toValueList(mustParsePolicyHosts(l))),
    notHosts: orNull(to?.notHosts, (l) => toValueList(mustParsePolicyHosts(l))),
    principals: orNull(from?.principals, (l) => new PrincipalMatcher(l)),
    notPrincipals: orNull(from?.notPrincipals, (l) => new PrincipalMatcher(l)),
    paths: orNull(to?.paths, (l) => new PathMatcher(l)),
    notPaths: orNull(to?.notPaths, (l) => new PathMatcher(l)),
    ipBlocks: orNull(from?.ipBlocks, (l) => new IpBlockMatcher(l)),
    notIpBlocks: orNull(from?.notIpBlocks, (l) => new IpBlockMatcher(l)),
    when: orNull(when, (conditions) =>
      conditions.map((c, i) => {
        const key = parseConditionKey(c.key);
        if (!key.ok) throw new Error(key.error);
        return new WhenCondition(`when[${i}] ${c.key}`, key.value, c.values);
      }),
    ),
  };
}

/** Whether the request meets every given field. The hot path of every decision. */
export function slotsMatch(s: MatchSlots, ctx: MatchContext): boolean {
  if (s.methods !== null && !methodSetHas(s.methods, ctx.method, ctx.methodBit)) return false;
  if (s.notMethods !== null && methodSetHas(s.notMethods, ctx.method, ctx.methodBit)) return false;
  if (s.ports !== null && (ctx.port === undefined || !listHas(s.ports, ctx.port))) return false;
  if (s.hosts !== null && !listHas(s.hosts, ctx.host)) return false;
  if (s.notHosts !== null && listHas(s.notHosts, ctx.host)) return false;
  if (s.principals !== null && !s.principals.matches(ctx.principal)) return false;
  if (s.notPrincipals !== null && s.notPrincipals.matches(ctx.principal)) return false;
  if (s.paths !== null && !s.paths.matches(ctx.path, ctx.segments)) return false;
  if (s.notPaths !== null && s.notPaths.matches(ctx.path, ctx.segments)) return false;
  if (s.ipBlocks !== null && !s.ipBlocks.contains(ctx.address)) return false;
  if (s.notIpBlocks !== null && s.notIpBlocks.contains(ctx.address)) return false;
  if (s.when !== null) {
    for (let i = 0; i < s.when.length; i++) if (!s.when[i]!.matches(ctx)) return false;
  }
  return true;
}

export interface Mismatch {
  /** e.g. `to.paths`, `from.notPrincipals`, `when[0] request.headers[x-tenant]` */
  readonly condition: string;
  readonly reason: string;
}

interface FieldSpec {
  readonly slot: Exclude<keyof MatchSlots, 'when'>;
  readonly section: 'from' | 'to';
  readonly negated: boolean;
  readonly noun: string;
  readonly read: (ctx: MatchContext) => string | number | undefined;
  readonly test: (matcher: NonNullable<MatchSlots[FieldSpec['slot']]>, ctx: MatchContext) => boolean;
  readonly listed: (matcher: NonNullable<MatchSlots[FieldSpec['slot']]>) => readonly (string | number)[];
}

const asList = (m: unknown) => m as ValueList<string | number>;
const valueField = (slot: FieldSpec['slot'], section: 'from' | 'to', negated: boolean, noun: string, read: FieldSpec['read']): FieldSpec => ({
  slot,
  section,
  negated,
  noun,
  read,
  test: (m, ctx) => {
    const value = read(ctx);
    return value !== undefined && listHas(asList(m), value);
  },
  listed: (m) => listValues(asList(m)),
});
const methodField = (slot: FieldSpec['slot'], negated: boolean): FieldSpec => ({
  slot,
  section: 'to',
  negated,
  noun: 'method',
  read: (ctx) => ctx.method,
  test: (m, ctx) => methodSetHas(m as MethodSet, ctx.method, ctx.methodBit),
  listed: (m) => methodSetValues(m as MethodSet),
});
const principalField = (slot: FieldSpec['slot'], negated: boolean): FieldSpec => ({
  slot,
  section: 'from',
  negated,
  noun: 'principal',
  read: (ctx) => ctx.principal,
  test: (m, ctx) => (m as PrincipalMatcher).matches(ctx.principal),
  listed: (m) => (m as PrincipalMatcher).sources,
});
const pathField = (slot: FieldSpec['slot'], negated: boolean): FieldSpec => ({
  slot,
  section: 'to',
  negated,
  noun: 'path',
  read: (ctx) => ctx.path,
  test: (m, ctx) => (m as PathMatcher).matches(ctx.path, ctx.segments),
  listed: (m) => (m as PathMatcher).sources,
});
const ipField = (slot: FieldSpec['slot'], negated: boolean): FieldSpec => ({
  slot,
  section: 'from',
  negated,
  noun: 'source IP address',
  read: (ctx) => ctx.sourceIp,
  test: (m, ctx) => (m as IpBlockMatcher).contains(ctx.address),
  listed: (m) => (m as IpBlockMatcher).sources,
});

// Same order as slotsMatch.
const FIELDS: readonly FieldSpec[] = [
  methodField('methods', false),
  methodField('notMethods', true),
  valueField('ports', 'to', false, 'destination port', (ctx) => ctx.port),
  valueField('hosts', 'to', false, 'host', (ctx) => ctx.host),
  valueField('notHosts', 'to', true, 'host', (ctx) => ctx.host),
  principalField('principals', false),
  principalField('notPrincipals', true),
  pathField('paths', false),
  pathField('notPaths', true),
  ipField('ipBlocks', false),
  ipField('notIpBlocks', true),
];

const SHOWN_ENTRIES = 8;

function showList(entries: readonly (string | number)[]): string {
  const shown = entries.slice(0, SHOWN_ENTRIES).map((e) => JSON.stringify(e));
  if (entries.length > SHOWN_ENTRIES) shown.push(`… ${entries.length - SHOWN_ENTRIES} more`);
  return `[${shown.join(', ')}]`;
}

function whyNot(value: unknown, noun: string, negated: boolean, listed: readonly (string | number)[]): string {
  if (value === undefined) return `the request has no ${noun} (expected one of ${showList(listed)})`;
  return `${JSON.stringify(value)} ${negated ? 'matches' : 'matches none of'} ${showList(listed)}`;
}

/**
 * The first field, in evaluation order, that the request does not meet; undefined when all match.
 * `section` overrides the `from`/`to` prefix (rate limits call every field `match.*`).
 */
export function firstMismatch(s: MatchSlots, ctx: MatchContext, section?: string): Mismatch | undefined {
  for (const field of FIELDS) {
    const matcher = s[field.slot];
    if (matcher === null) continue;
    if (field.test(matcher, ctx) !== field.negated) continue;
    return {
      condition: `${section ?? field.section}.${field.slot}`,
      reason: whyNot(field.read(ctx), field.noun, field.negated, field.listed(matcher)),
    };
  }
  for (const condition of s.when ?? []) {
    if (condition.matches(ctx)) continue;
    return { condition: condition.field, reason: whyNot(condition.read(ctx), condition.noun, false, condition.listed) };
  }
  return undefined;
}

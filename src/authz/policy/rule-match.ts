import { parseConditionKey } from './condition-key.js';
import { mustParsePolicyHosts } from './host.js';
import { methodSetHas, methodSetValues, toMethodSet, type MethodSet } from './http-method.js';
import { IpBlockMatcher } from './ip-block.js';
import type { MatchContext } from './match-context.js';
import { matchesLiteral, PathMatcher } from './path-pattern.js';
import { PrincipalMatcher } from './principal-pattern.js';
import type { PolicyRule } from './schema.js';
import { SharedMatchers } from './shared-matchers.js';
import { listHas, listValues, toValueList, type ValueList } from './value-list.js';
import { WhenCondition } from './when-condition.js';

// What a rule (or a rate limit's `match`) requires of a request, compiled once into fixed slots: null when the
// policy did not give that field (an empty list counts as not given, so `notPaths: []` excludes nothing). Every
// compiled rule has the same shape and `slotsMatch` tests the slots in straight-line code, cheapest first, which
// keeps the per-candidate cost of a decision to a few lookups. `firstMismatch` walks the same slots, in the same
// order, to say why a rule did not match; it serves explanations only.
//
// `given` says which slots are set, one bit each, so that `slotsMatch` reads only those: a rule usually gives three
// or four of the twelve, and with many rules every field read can be a cold cache line.

/** The bit of each slot in `MatchSlots.given`. */
export const Slot = {
  methods: 1 << 0,
  notMethods: 1 << 1,
  ports: 1 << 2,
  hosts: 1 << 3,
  notHosts: 1 << 4,
  principals: 1 << 5,
  notPrincipals: 1 << 6,
  paths: 1 << 7,
  notPaths: 1 << 8,
  ipBlocks: 1 << 9,
  notIpBlocks: 1 << 10,
  when: 1 << 11,
} as const;

export type SlotName = keyof typeof Slot;

/** The bits of the slots that are set. */
export function givenSlots(s: Pick<MatchSlots, SlotName>): number {
  let given = 0;
  for (const name of Object.keys(Slot) as SlotName[]) if (s[name] !== null) given |= Slot[name];
  return given;
}

export interface MatchSlots {
  /** One bit per slot that is set; see Slot. */
  readonly given: number;
  readonly methods: MethodSet | null;
  readonly notMethods: MethodSet | null;
  readonly ports: ValueList<number> | null;
  readonly hosts: ValueList<string> | null;
  readonly notHosts: ValueList<string> | null;
  readonly principals: PrincipalMatcher | null;
  readonly notPrincipals: PrincipalMatcher | null;
  readonly paths: PathMatcher | null;
  /** paths.literal and paths.literalKinds, held here so that a decision need not read the matcher for them. */
  readonly pathLiteral: string | null;
  readonly pathKinds: number;
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

/** `shared` holds the matchers already built for other rules of the same policy, to be reused when equal. */
export function compileMatchSlots({ from, to, when }: MatchSpec, shared = new SharedMatchers()): MatchSlots {
  const principals = (l: readonly string[]) => shared.get('principals', l, () => new PrincipalMatcher(l));
  const paths = (l: readonly string[]) => shared.get('paths', l, () => new PathMatcher(l));
  const ipBlocks = (l: readonly string[]) => shared.get('ipBlocks', l, () => new IpBlockMatcher(l));
  const slots = {
    methods: orNull(to?.methods, toMethodSet),
    notMethods: orNull(to?.notMethods, toMethodSet),
    ports: orNull(to?.ports, (l) => toValueList(l)),
    hosts: orNull(to?.hosts, (l) => toValueList(mustParsePolicyHosts(l))),
    notHosts: orNull(to?.notHosts, (l) => toValueList(mustParsePolicyHosts(l))),
    principals: orNull(from?.principals, principals),
    notPrincipals: orNull(from?.notPrincipals, principals),
    paths: orNull(to?.paths, paths),
    notPaths: orNull(to?.notPaths, paths),
    ipBlocks: orNull(from?.ipBlocks, ipBlocks),
    notIpBlocks: orNull(from?.notIpBlocks, ipBlocks),
    when: orNull(when, (conditions) =>
      shared.get('when', conditions, () =>
        conditions.map((c, i) => {
          const key = parseConditionKey(c.key);
          if (!key.ok) throw new Error(key.error);
          return new WhenCondition(`when[${i}] ${c.key}`, key.value, c.values);
        }),
      ),
    ),
  };
  return { given: givenSlots(slots), ...slots, pathLiteral: slots.paths?.literal ?? null, pathKinds: slots.paths?.literalKinds ?? 0 };
}

/** Whether the request meets every given field. The hot path of every decision. */
export function slotsMatch(s: MatchSlots, ctx: MatchContext): boolean {
  const given = s.given;
  if ((given & Slot.methods) !== 0 && !methodSetHas(s.methods!, ctx.method, ctx.methodBit)) return false;
  if ((given & Slot.notMethods) !== 0 && methodSetHas(s.notMethods!, ctx.method, ctx.methodBit)) return false;
  if ((given & Slot.ports) !== 0 && (ctx.port === undefined || !listHas(s.ports!, ctx.port))) return false;
  if ((given & Slot.hosts) !== 0 && !listHas(s.hosts!, ctx.host)) return false;
  if ((given & Slot.notHosts) !== 0 && listHas(s.notHosts!, ctx.host)) return false;
  if ((given & Slot.principals) !== 0 && !s.principals!.matches(ctx.principal)) return false;
  if ((given & Slot.notPrincipals) !== 0 && s.notPrincipals!.matches(ctx.principal)) return false;
  if ((given & Slot.paths) !== 0) {
    const literal = s.pathLiteral;
    if (literal !== null ? !matchesLiteral(ctx.path, literal, s.pathKinds) : !s.paths!.matchesPathOf(ctx)) return false;
  }
  if ((given & Slot.notPaths) !== 0 && s.notPaths!.matchesPathOf(ctx)) return false;
  if ((given & Slot.ipBlocks) !== 0 && !s.ipBlocks!.contains(ctx.address)) return false;
  if ((given & Slot.notIpBlocks) !== 0 && s.notIpBlocks!.contains(ctx.address)) return false;
  if ((given & Slot.when) !== 0) {
    const when = s.when!;
    for (let i = 0; i < when.length; i++) if (!when[i]!.matches(ctx)) return false;
  }
  return true;
}

export interface Mismatch {
  /** e.g. `to.paths`, `from.notPrincipals`, `when[0] request.headers[x-tenant]` */
  readonly condition: string;
  readonly reason: string;
}

interface FieldSpec {
  readonly slot: Exclude<SlotName, 'when'>;
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
  test: (m, ctx) => (m as PathMatcher).matchesPathOf(ctx),
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

import type { CompiledRule, IndexKeys, Role } from './compile-rule.js';
import type { MatchContext } from './match-context.js';
import { slotsMatch, type MatchSlots } from './rule-match.js';

// Decision cost must not grow with the number of rules. Each rule is filed under one request fact it can only match
// under (its exact hosts, exact principals, first path segments, ports or methods); a decision looks up the
// request's value for each fact and evaluates only the rules filed there, plus a residual list of rules that name no
// such fact (wildcard principals and paths only, say). Of the facts a rule names, it is filed under the most
// selective one, the one whose values the fewest other rules share, as a query planner picks an index.
//
// One index serves every role (deny, allow, audit, dry run), so a decision pays for one cold map lookup per fact,
// not one per role. And because a rule is reached only through its own bucket, the filed copy drops the slot that
// the bucket already guarantees (a rule filed under host "orders" is only ever tested against requests for
// "orders"), which saves reading it on every decision. With many rules it is cold memory reads, not comparisons,
// that a decision pays for, hence also the compact forms in value-list.ts and http-method.ts.

type Key = string | number;

/**
 * A bucket: the rules filed under one value, in file order, every role mixed. Most values are named by one rule, and
 * then the rule itself is the bucket: no list to read on the way to it.
 */
type Bucket = CompiledRule | CompiledRule[];

interface Dimension {
  readonly name: keyof IndexKeys;
  readonly keyOf: (ctx: MatchContext) => Key | undefined;
  /** The slot a bucket of this dimension guarantees, if any. */
  readonly implied: keyof MatchSlots | undefined;
}

// Order breaks ties in selectivity: hosts and principals usually spread rules best, methods worst.
const DIMENSIONS: readonly Dimension[] = [
  { name: 'host', keyOf: (ctx) => ctx.host, implied: 'hosts' },
  // Only rules whose principals are all exact are filed here, so the bucket guarantees the principal slot.
  { name: 'principal', keyOf: (ctx) => ctx.principal, implied: 'principals' },
  // A pattern for `/` is filed under '', which no real segment can be. Same first segment is not a path match.
  { name: 'pathRoot', keyOf: (ctx) => ctx.segments[0] ?? '', implied: undefined },
  { name: 'port', keyOf: (ctx) => ctx.port, implied: 'ports' },
  { name: 'method', keyOf: (ctx) => ctx.method, implied: 'methods' },
];

interface Table {
  readonly keyOf: Dimension['keyOf'];
  readonly buckets: ReadonlyMap<Key, Bucket>;
}

export interface IndexEntry {
  readonly rule: CompiledRule;
  readonly keys: IndexKeys;
}

export interface RuleIndexStats {
  readonly rules: number;
  readonly byDimension: Readonly<Record<string, number>>;
  readonly residual: number;
  /** The most rules one request can be tested against: the largest bucket of each dimension, plus the residual. */
  readonly worstCandidates: number;
}

function fileInto(buckets: Map<Key, Bucket>, key: Key, rule: CompiledRule): void {
  const bucket = buckets.get(key);
  if (bucket === undefined) buckets.set(key, rule);
  else if (!Array.isArray(bucket)) {
    // A rule can list the same value twice; file it once.
    if (bucket.order !== rule.order) buckets.set(key, [bucket, rule]);
  } else if (bucket[bucket.length - 1]!.order !== rule.order) bucket.push(rule);
}

const bucketSize = (bucket: Bucket) => (Array.isArray(bucket) ? bucket.length : 1);

export class RuleIndex {
  private readonly tables: readonly Table[];
  private readonly residual: readonly CompiledRule[];
  /** How many rules play each role, so that a decision skips roles nobody plays. */
  private readonly perRole: readonly number[];
  readonly stats: RuleIndexStats;

  /** `entries` must be in file order. */
  constructor(entries: readonly IndexEntry[]) {
    const shares = countShares(entries);
    const buckets = DIMENSIONS.map(() => new Map<Key, Bucket>());
    const residual: CompiledRule[] = [];
    const filedUnder = DIMENSIONS.map(() => 0);
    const perRole = [0, 0, 0, 0];
    for (const { rule, keys } of entries) {
      perRole[rule.role]!++;
      const d = mostSelectiveDimension(keys, shares);
      if (d === -1) {
        residual.push(rule);
        continue;
      }
      const dim = DIMENSIONS[d]!;
      const filed: CompiledRule = dim.implied === undefined ? rule : { ...rule, [dim.implied]: null };
      filedUnder[d]!++;
      for (const key of keys[dim.name]!) fileInto(buckets[d]!, key, filed);
    }
    this.tables = DIMENSIONS.flatMap((dim, d) => (buckets[d]!.size > 0 ? [{ keyOf: dim.keyOf, buckets: buckets[d]! }] : []));
    this.residual = residual;
    this.perRole = perRole;
    this.stats = {
      rules: entries.length,
      byDimension: Object.fromEntries(DIMENSIONS.map((dim, d) => [dim.name, filedUnder[d]!])),
      residual: residual.length,
      worstCandidates: residual.length + buckets.reduce((sum, b) => sum + [...b.values()].reduce((m, x) => Math.max(m, bucketSize(x)), 0), 0),
    };
  }

  /** The first rule of `role` in file order that matches, or undefined. */
  firstMatch(ctx: MatchContext, role: Role): CompiledRule | undefined {
    if (this.perRole[role] === 0) return undefined;
    let best: CompiledRule | undefined;
    for (let t = 0; t < this.tables.length; t++) {
      const table = this.tables[t]!;
      const key = table.keyOf(ctx);
      if (key === undefined) continue;
      const bucket = table.buckets.get(key);
      if (bucket === undefined) continue;
      if (!Array.isArray(bucket)) {
        if (bucket.role === role && (best === undefined || bucket.order < best.order) && slotsMatch(bucket, ctx)) best = bucket;
      } else {
        best = firstIn(bucket, role, ctx, best);
      }
    }
    return firstIn(this.residual, role, ctx, best);
  }

  /** Every matching rule of `role` in file order, or undefined when none matches (no allocation in the common case). */
  allMatches(ctx: MatchContext, role: Role): CompiledRule[] | undefined {
    if (this.perRole[role] === 0) return undefined;
    let found: CompiledRule[] | undefined;
    const consider = (rule: CompiledRule) => {
      if (rule.role === role && slotsMatch(rule, ctx)) (found ??= []).push(rule);
    };
    const collect = (rules: Bucket | readonly CompiledRule[] | undefined) => {
      if (rules === undefined) return;
      if (Array.isArray(rules)) rules.forEach(consider);
      else consider(rules as CompiledRule);
    };
    for (const table of this.tables) {
      const key = table.keyOf(ctx);
      if (key !== undefined) collect(table.buckets.get(key));
    }
    collect(this.residual);
    // A rule is filed under one dimension and a request has one value per dimension, so there are no duplicates.
    return found && found.length > 1 ? found.sort((a, b) => a.order - b.order) : found;
  }
}

/** The first rule of `role` in `rules` (sorted by order) that matches and comes before `best`. */
function firstIn(rules: readonly CompiledRule[], role: Role, ctx: MatchContext, best: CompiledRule | undefined): CompiledRule | undefined {
  const limit = best === undefined ? Infinity : best.order;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.order >= limit) break;
    if (rule.role === role && slotsMatch(rule, ctx)) return rule;
  }
  return best;
}

/** For each dimension, how many rules name each value. */
function countShares(entries: readonly IndexEntry[]): Map<Key, number>[] {
  return DIMENSIONS.map((dim) => {
    const shares = new Map<Key, number>();
    for (const { keys } of entries) {
      for (const key of new Set<Key>(keys[dim.name] ?? [])) shares.set(key, (shares.get(key) ?? 0) + 1);
    }
    return shares;
  });
}

/** The dimension whose busiest value the rule shares with the fewest rules; -1 when it names none. */
function mostSelectiveDimension(ruleKeys: IndexKeys, shares: readonly Map<Key, number>[]): number {
  let best = -1;
  let bestCost = Infinity;
  DIMENSIONS.forEach((dim, d) => {
    const keys = ruleKeys[dim.name];
    if (keys === undefined || keys.length === 0) return;
    const cost = Math.max(...keys.map((k) => shares[d]!.get(k) ?? 0));
    if (cost < bestCost) {
      best = d;
      bestCost = cost;
    }
  });
  return best;
}

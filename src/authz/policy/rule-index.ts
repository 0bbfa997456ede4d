import { Role, withoutSlot, type CompiledRule, type IndexKeys } from './compile-rule.js';
import type { MatchContext } from './match-context.js';
import { slotsMatch, type SlotName } from './rule-match.js';

// Decision cost must not grow with the number of rules. Each rule is filed under one request fact it can only match
// under (its exact hosts, exact principals, first path segments, ports or methods); a decision looks up the
// request's value for each fact and evaluates only the rules filed there, plus a residual list of rules that name no
// such fact (wildcard principals and paths only, say). Of the facts a rule names, it is filed under the most
// selective one, the one whose values the fewest other rules share, as a query planner picks an index.
//
// One index serves every role (deny, allow, audit, dry run), and a decision walks it once for all of them: one map
// lookup per fact and one test per candidate, not one per role. And because a rule is reached only through its own
// bucket, the filed copy drops the slot that the bucket already guarantees (a rule filed under host "orders" is only
// ever tested against requests for "orders"), which saves reading it on every decision. With many rules it is cold
// memory reads, not comparisons, that a decision pays for, hence also the compact forms in value-list.ts and
// http-method.ts, the flat shared strings of string-pool.ts, the shared matchers of shared-matchers.ts, and the path
// literal a rule holds itself (rule-match.ts).

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
  readonly implied: Exclude<SlotName, 'when'> | undefined;
}

// Order breaks ties in selectivity: hosts and principals usually spread rules best, methods worst.
const DIMENSIONS: readonly Dimension[] = [
  { name: 'host', keyOf: (ctx) => ctx.host, implied: 'hosts' },
  // Only rules whose principals are all exact are filed here, so the bucket guarantees the principal slot.
  { name: 'principal', keyOf: (ctx) => ctx.principal, implied: 'principals' },
  // A pattern for `/` is filed under '', which no real segment can be. Same first segment is not a path match.
  { name: 'pathRoot', keyOf: (ctx) => ctx.firstSegment, implied: undefined },
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
  readonly stats: RuleIndexStats;

  /** `entries` must be in file order. */
  constructor(entries: readonly IndexEntry[]) {
    const shares = countShares(entries);
    const buckets = DIMENSIONS.map(() => new Map<Key, Bucket>());
    const residual: CompiledRule[] = [];
    const filedUnder = DIMENSIONS.map(() => 0);
    for (const { rule, keys } of entries) {
      const d = mostSelectiveDimension(keys, shares);
      if (d === -1) {
        residual.push(rule);
        continue;
      }
      const dim = DIMENSIONS[d]!;
      const filed = dim.implied === undefined ? rule : withoutSlot(rule, dim.implied);
      filedUnder[d]!++;
      for (const key of keys[dim.name]!) fileInto(buckets[d]!, key, filed);
    }
    this.tables = DIMENSIONS.flatMap((dim, d) => (buckets[d]!.size > 0 ? [{ keyOf: dim.keyOf, buckets: buckets[d]! }] : []));
    this.residual = residual;
    this.stats = {
      rules: entries.length,
      byDimension: Object.fromEntries(DIMENSIONS.map((dim, d) => [dim.name, filedUnder[d]!])),
      residual: residual.length,
      worstCandidates: residual.length + buckets.reduce((sum, b) => sum + [...b.values()].reduce((m, x) => Math.max(m, bucketSize(x)), 0), 0),
    };
  }

  /**
   * The rules that decide `ctx`, in one pass over its candidates: each bucket is looked up once and each candidate
   * tested at most once, whatever its role.
   */
  match(ctx: MatchContext): RuleMatches {
    const found: RuleMatches = { deny: undefined, allow: undefined, audit: undefined, dryRun: undefined };
    for (let t = 0; t < this.tables.length; t++) {
      const table = this.tables[t]!;
      const key = table.keyOf(ctx);
      if (key === undefined) continue;
      const bucket = table.buckets.get(key);
      if (bucket === undefined) continue;
      if (!Array.isArray(bucket)) consider(bucket, ctx, found);
      else for (let i = 0; i < bucket.length; i++) consider(bucket[i]!, ctx, found);
    }
    for (let i = 0; i < this.residual.length; i++) consider(this.residual[i]!, ctx, found);
    // Buckets are visited one after another, so matches from several of them can be out of file order.
    if (found.audit !== undefined && found.audit.length > 1) found.audit.sort(byOrder);
    if (found.dryRun !== undefined && found.dryRun.length > 1) found.dryRun.sort(byOrder);
    return found;
  }
}

/** What the rules say about one request, before defaultAction applies. */
export interface RuleMatches {
  /** The first matching deny rule in file order. */
  deny: CompiledRule | undefined;
  /** The first matching allow rule in file order; may be left undefined once a deny rule matched. */
  allow: CompiledRule | undefined;
  /** Every matching audit rule in file order; undefined when none matches (no allocation in the common case). */
  audit: CompiledRule[] | undefined;
  /** Every matching dry-run rule in file order; undefined when none matches. */
  dryRun: CompiledRule[] | undefined;
}

const byOrder = (a: CompiledRule, b: CompiledRule) => a.order - b.order;

/** Records `rule` in `found` if it matches and matters: a rule that cannot change the answer is not tested. */
function consider(rule: CompiledRule, ctx: MatchContext, found: RuleMatches): void {
  switch (rule.role) {
    case Role.deny:
      if ((found.deny === undefined || rule.order < found.deny.order) && slotsMatch(rule, ctx)) found.deny = rule;
      return;
    case Role.allow:
      if (found.deny === undefined && (found.allow === undefined || rule.order < found.allow.order) && slotsMatch(rule, ctx)) {
        found.allow = rule;
      }
      return;
    case Role.audit:
      if (slotsMatch(rule, ctx)) (found.audit ??= []).push(rule);
      return;
    default:
      if (slotsMatch(rule, ctx)) (found.dryRun ??= []).push(rule);
  }
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

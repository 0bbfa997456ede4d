import { compileRateLimit, compileRule, indexKeysOf, type CompiledRateLimit, type CompiledRule } from './compile-rule.js';
import { RuleIndex, type IndexEntry } from './rule-index.js';
import { SharedMatchers } from './shared-matchers.js';
import type { PolicyDocument, PolicyJwt } from './schema.js';
import { withPooledStrings } from './string-pool.js';

/** A policy ready to decide: rules compiled to matchers and filed in an index. */
export interface CompiledPolicy {
  readonly defaultAction: 'allow' | 'deny';
  readonly explainDenials: boolean;
  /** Every rule in file order (for explain and for summaries). */
  readonly rules: readonly CompiledRule[];
  readonly index: RuleIndex;
  readonly rateLimits: readonly CompiledRateLimit[];
  readonly jwt: PolicyJwt | undefined;
}

/** Compiles a validated document. Pure; throws only on input the schema would have refused. */
export function compilePolicy(validated: PolicyDocument): CompiledPolicy {
  const doc = withPooledStrings(validated);
  const shared = new SharedMatchers();
  const entries: IndexEntry[] = doc.rules.map((rule, order) => {
    const compiled = compileRule(rule, order, shared);
    return { rule: compiled, keys: indexKeysOf(rule, compiled) };
  });
  return {
    defaultAction: doc.defaultAction,
    explainDenials: doc.explainDenials,
    rules: entries.map((e) => e.rule),
    index: new RuleIndex(entries),
    rateLimits: doc.rateLimits.map((limit) => compileRateLimit(limit, shared)),
    jwt: doc.jwt,
  };
}

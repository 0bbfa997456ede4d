import { compileRateLimit, compileRule, indexKeysOf, type CompiledRateLimit, type CompiledRule } from './compile-rule.js';
import { RuleIndex, type IndexEntry } from './rule-index.js';
import type { PolicyDocument, PolicyJwt } from './schema.js';

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
export function compilePolicy(doc: PolicyDocument): CompiledPolicy {
  const entries: IndexEntry[] = doc.rules.map((rule, order) => {
    const compiled = compileRule(rule, order);
    return { rule: compiled, keys: indexKeysOf(rule, compiled) };
  });
  return {
    defaultAction: doc.defaultAction,
    explainDenials: doc.explainDenials,
    rules: entries.map((e) => e.rule),
    index: new RuleIndex(entries),
    rateLimits: doc.rateLimits.map(compileRateLimit),
    jwt: doc.jwt,
  };
}

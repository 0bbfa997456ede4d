import type { CompiledPolicy } from './compile.js';
import type { MatchContext } from './match-context.js';
import { firstMismatch, type Mismatch } from './rule-match.js';
import type { RuleAction } from './schema.js';

// Explanations walk every rule in file order without the indexes: they answer "why", not "how fast", and a scan is
// the plain reading of the policy that the indexed evaluator must agree with.

export interface RuleTrace {
  readonly name: string;
  readonly action: RuleAction;
  readonly dryRun: boolean;
  readonly matched: boolean;
  /** The first condition that did not match, in evaluation order. */
  readonly failed?: Mismatch;
}

export interface RateLimitTrace {
  readonly name: string;
  readonly matched: boolean;
  readonly failed?: Mismatch;
}

export function traceRules(policy: CompiledPolicy, ctx: MatchContext): RuleTrace[] {
  return policy.rules.map((rule) => {
    const failed = firstMismatch(rule, ctx);
    const base = { name: rule.name, action: rule.action, dryRun: rule.dryRun };
    return failed === undefined ? { ...base, matched: true } : { ...base, matched: false, failed };
  });
}

export function traceRateLimits(policy: CompiledPolicy, ctx: MatchContext): RateLimitTrace[] {
  return policy.rateLimits.map((limit) => {
    const failed = firstMismatch(limit, ctx, 'match');
    return failed === undefined ? { name: limit.name, matched: true } : { name: limit.name, matched: false, failed };
  });
}

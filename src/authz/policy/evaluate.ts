import type { Decision, DryRunNote } from '../types.js';
import type { CompiledPolicy } from './compile.js';
import type { MatchContext } from './match-context.js';
import { DEFAULT_RULE } from './schema.js';

export type PolicyVerdict = Extract<Decision, { kind: 'allow' | 'deny' }>;

/**
 * The policy's answer for one request, before rate limits. Deny rules first (any match denies; the first in the
 * file is named), then allow rules, else `defaultAction`. Audit rules and dry-run rules never change the answer;
 * the ones that match are reported alongside it. Pure.
 */
export function evaluate(policy: CompiledPolicy, ctx: MatchContext): PolicyVerdict {
  const { deny, allow, audit, dryRun } = policy.index.match(ctx);
  let verdict: PolicyVerdict;
  if (deny !== undefined) {
    verdict = { kind: 'deny', rule: deny.name, reason: deny.denial };
  } else if (allow !== undefined) {
    verdict = { kind: 'allow', rule: allow.name, principal: ctx.principal };
  } else if (policy.defaultAction === 'allow') {
    verdict = { kind: 'allow', rule: DEFAULT_RULE, principal: ctx.principal };
  } else {
    verdict = { kind: 'deny', rule: DEFAULT_RULE, reason: 'no rule allows the request (defaultAction: deny)' };
  }
  if (audit !== undefined) verdict.audit = audit.map((r) => r.name);
  if (dryRun !== undefined) {
    verdict.dryRun = dryRun.map((r): DryRunNote => ({ rule: r.name, wouldBe: r.action === 'deny' ? 'deny' : 'allow' }));
  }
  return verdict;
}

// A decision as metrics and audit records name it: an outcome and the rule (or limit) that decided. Pure. The same
// words as the sidecar's HopDecision (filters/chain.ts), so that audit records and series from both line up.
import type { Decision } from './types.js';

/** A decision's kind is its outcome: `allow`, `deny`, `unauthenticated`, `invalid`, `rate_limited`. */
export type DecisionOutcome = Decision['kind'];

export interface DecisionSummary {
  outcome: DecisionOutcome;
  /** The deciding rule, `default`, `error`; the limit's name when rate-limited; `request` when the request itself was refused. */
  rule: string;
  dryRun?: ReadonlyArray<{ rule: string; wouldBe: string }>;
  audit?: readonly string[];
}

/** The deciding rule or limit, without building a summary (the metrics' hot path). */
export function ruleOf(decision: Decision): string {
  switch (decision.kind) {
    case 'allow':
    case 'deny':
      return decision.rule;
    case 'rate_limited':
      return decision.limit;
    case 'unauthenticated':
    case 'invalid':
      return 'request';
  }
}

export function decisionSummary(decision: Decision): DecisionSummary {
  const summary: DecisionSummary = { outcome: decision.kind, rule: ruleOf(decision) };
  if (decision.kind === 'allow' || decision.kind === 'deny') {
    if (decision.dryRun) summary.dryRun = decision.dryRun;
    if (decision.audit) summary.audit = decision.audit;
  }
  return summary;
}

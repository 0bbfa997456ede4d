import type { Decision } from '../types.js';
import type { Explanation } from './engine.js';
import type { RuleTrace } from './explain.js';
import { DEFAULT_RULE } from './schema.js';

// The human form of an explanation, for `meshward policy explain`. Exactly what a person needs to see why a
// request got its answer: the verdict and who made it, the path as the rules saw it, and the first reason each rule
// did not match.

function headline(decision: Decision): string {
  switch (decision.kind) {
    case 'allow':
      return decision.rule === DEFAULT_RULE ? 'ALLOW by default (defaultAction: allow)' : `ALLOW by rule "${decision.rule}"`;
    case 'deny':
      return decision.rule === DEFAULT_RULE ? `DENY by default: ${decision.reason}` : `DENY by rule "${decision.rule}": ${decision.reason}`;
    case 'unauthenticated':
      return `UNAUTHENTICATED (401): ${decision.reason}\nwww-authenticate: ${decision.challenge}`;
    case 'invalid':
      return `INVALID (400): ${decision.reason}`;
    case 'rate_limited':
      return `RATE LIMITED (429) by "${decision.limit}", retry after ${decision.retryAfterSeconds}s`;
  }
}

function ruleOutcome(rule: RuleTrace): string {
  if (!rule.matched) return `no match  ${rule.failed!.condition}: ${rule.failed!.reason}`;
  if (rule.dryRun) return `MATCH     dry run: would ${rule.action}, not enforced`;
  if (rule.action === 'audit') return 'MATCH     audited';
  return 'MATCH';
}

export function formatExplanation(explanation: Explanation, originalPath: string): string {
  const lines = [`decision: ${headline(explanation.decision)}`];
  const target = explanation.target;
  if (target?.ok) {
    const as = target.path === originalPath ? '' : `  (normalised from ${JSON.stringify(originalPath)})`;
    lines.push(`path:     ${target.path}${as}`);
  }
  if (explanation.rules === undefined) {
    lines.push('rules:    not evaluated: the request was refused before authorization');
    return `${lines.join('\n')}\n`;
  }
  const width = Math.max(4, ...explanation.rules.map((r) => r.name.length));
  const actionOf = (r: RuleTrace) => (r.dryRun ? `${r.action}*` : r.action);
  lines.push(explanation.rules.length === 0 ? 'rules:    (none)' : 'rules:');
  for (const rule of explanation.rules) lines.push(`  ${rule.name.padEnd(width)}  ${actionOf(rule).padEnd(6)}  ${ruleOutcome(rule)}`);
  if (explanation.rules.some((r) => r.dryRun)) lines.push('  (* dry run)');
  if (explanation.rateLimits && explanation.rateLimits.length > 0) {
    lines.push('rate limits (charged only when the request is allowed):');
    const limitWidth = Math.max(...explanation.rateLimits.map((l) => l.name.length));
    for (const limit of explanation.rateLimits) {
      const outcome = limit.matched ? 'MATCH' : `no match  ${limit.failed!.condition}: ${limit.failed!.reason}`;
      lines.push(`  ${limit.name.padEnd(limitWidth)}  ${outcome}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

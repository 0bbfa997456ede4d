import type { PolicyDocument } from './schema.js';

/** One line for `meshward policy check`: what the policy holds, e.g. `5 rules (3 allow, 1 deny, 1 audit; ...)`. */
export function summarisePolicy(policy: PolicyDocument): string {
  const count = (action: string) => policy.rules.filter((r) => r.action === action).length;
  const dryRuns = policy.rules.filter((r) => r.dryRun).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [
    `${plural(policy.rules.length, 'rule')} (${count('allow')} allow, ${count('deny')} deny, ${count('audit')} audit` +
      `${dryRuns > 0 ? `; ${dryRuns} dry run` : ''})`,
    plural(policy.rateLimits.length, 'rate limit'),
    `defaultAction ${policy.defaultAction}`,
  ];
  if (policy.jwt) parts.push(`JWT from ${policy.jwt.issuer}${policy.jwt.required ? ' (required)' : ''}`);
  return parts.join(', ');
}

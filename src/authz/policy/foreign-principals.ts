import { formatPath } from '../../config/index.js';
import { API_KEY_PRINCIPAL_PREFIX } from '../api-key-principal.js';
import { parsePrincipalPattern } from './principal-pattern.js';
import type { PolicyDocument } from './schema.js';

// Principal patterns in another trust domain than the one the policy serves. A sidecar accepts callers of its own
// trust domain only, so such a pattern never matches: an allow that never allows, a deny that never denies.
// Pure; `meshward policy check --trust-domain` warns of each.

export interface ForeignPrincipal {
  /** Where in the policy, e.g. `rules[1].from.principals[0]`. */
  path: string;
  /** The rule or rate limit that names it. */
  owner: string;
  principal: string;
  trustDomain: string;
}

export function foreignPrincipals(policy: PolicyDocument, trustDomain: string): ForeignPrincipal[] {
  const found: ForeignPrincipal[] = [];
  const check = (owner: string, path: (string | number)[], patterns: readonly string[] | undefined) =>
    patterns?.forEach((principal, i) => {
      const domain = trustDomainOf(principal);
      if (domain !== undefined && domain !== trustDomain) found.push({ path: formatPath([...path, i]), owner, principal, trustDomain: domain });
    });
  policy.rules.forEach((rule, r) => {
    const owner = `rule "${rule.name}"`;
    check(owner, ['rules', r, 'from', 'principals'], rule.from?.principals);
    check(owner, ['rules', r, 'from', 'notPrincipals'], rule.from?.notPrincipals);
    rule.when?.forEach((condition, c) => {
      if (condition.key === 'source.principal') check(owner, ['rules', r, 'when', c, 'values'], condition.values);
    });
  });
  policy.rateLimits.forEach((limit, l) => check(`rate limit "${limit.name}"`, ['rateLimits', l, 'match', 'principals'], limit.match?.principals));
  return found;
}

/** The trust domain an exact ID or a prefix pattern is in; undefined for `*` (any caller) and API keys (no domain). */
function trustDomainOf(pattern: string): string | undefined {
  const parsed = parsePrincipalPattern(pattern);
  if (!parsed.ok || parsed.value.kind === 'any' || pattern.startsWith(API_KEY_PRINCIPAL_PREFIX)) return undefined;
  return parsed.value.source.slice('spiffe://'.length).split('/')[0];
}

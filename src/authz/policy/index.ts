// The policy engine's public face: load or compile a policy, decide, explain, test.
export { ManualClock, systemClock, type Clock } from './clock.js';
export { compilePolicy, type CompiledPolicy } from './compile.js';
export { compileRateLimit, type CompiledRateLimit } from './compile-rule.js';
export { applicableLimits, PolicyDecisionEngine, type Explanation } from './engine.js';
export { formatExplanation } from './explain-text.js';
export { foreignPrincipals, type ForeignPrincipal } from './foreign-principals.js';
export type { RateLimitTrace, RuleTrace } from './explain.js';
export { tokenHeader, tokenScheme } from './jwt-location.js';
export { claimAt, ownString } from './match-context.js';
export {
  createPolicyEngine,
  loadPolicyEngine,
  loadPolicyEngineFromText,
  loadPolicyFile,
  parsePolicy,
  type LoadedPolicy,
  type PolicyEngineOptions,
} from './load.js';
export { parseIpAddress, parseIpBlock, type IpAddress, type IpBlock } from './ip-block.js';
export { normalisePath, type NormalisedTarget } from './path-normalise.js';
export { describeDecision, loadPolicyCases, runPolicyCases, type CaseResult, type PolicyCase } from './policy-cases.js';
export { summarisePolicy } from './policy-summary.js';
export { DEFAULT_RULE, FAIL_CLOSED_RULE, jwtSettings, policySchema, rateLimitSettings, type PolicyDocument, type PolicyJwt, type PolicyRateLimit } from './schema.js';
export { checkAuthority } from './host.js';

// The policy engine's public face: load or compile a policy, decide, explain, test.
export { ManualClock, systemClock, type Clock } from './clock.js';
export { compilePolicy, type CompiledPolicy } from './compile.js';
export { PolicyDecisionEngine, type Explanation } from './engine.js';
export { formatExplanation } from './explain-text.js';
export { foreignPrincipals, type ForeignPrincipal } from './foreign-principals.js';
export type { RateLimitTrace, RuleTrace } from './explain.js';
export { tokenHeader } from './jwt-verifier.js';
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
export { PolicyRuntime, type PolicyRuntimeOptions } from './policy-runtime.js';
export { summarisePolicy } from './policy-summary.js';
export { RateLimitStore } from './rate-limiter.js';
export { DEFAULT_RULE, FAIL_CLOSED_RULE, policySchema, type PolicyDocument } from './schema.js';
export { checkAuthority } from './host.js';

// The per-request filter chain: the contract, the runtime, the built-in filters and how a listener's chain is built.
export { buildExtProcChain, type ExtProcChain } from './extproc-chain.js';
export { buildInboundChain, buildIngressChains, buildOutboundChains, checkChains, sumReloads, type FilterSet, type InboundChain, type IngressChains, type OutboundChains } from './build-chain.js';
export { chainOf, replyResponse, runRequestSide, runResponseSide, type BodyReader, type Chain, type FilterResult, type HopContext, type HopDecision, type ResponseBuffering } from './chain.js';
export type { FilterEnvironment, FilterFactory, FilterMetrics, FilterResponse, HttpFilter } from './http-filter.js';
export { createPolicyChain, loadPolicyChain, loadPolicyChainFromText, PolicyChain, policyChainLoader, type PolicyChainOptions } from './authz/policy-chain.js';
export { PolicyRuntime, type PolicyRuntimeOptions } from './authz/policy-runtime.js';
export { registry } from './registry.js';
export { requestAuthority, requestHeaderChecks, underscoreHeaderNames, underscoreRefusal, type UnderscoreHeaderAction } from './request-header-checks.js';
export { PolicyFiles } from './authz/policy-files.js';
export { isPreflight } from './cors-policy.js';
export { appendRequestHeader, removeRequestHeader, setRequestHeader } from './request-headers.js';
export { PRINCIPAL_HEADER } from './identity-headers.js';
export { replies, type LocalReply } from './local-reply.js';

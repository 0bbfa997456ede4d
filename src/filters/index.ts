// The per-request filter chain and its filters.
export { runFilters, type Filter, type FilterResult, type HopContext, type HopDecision } from './chain.js';
export { extAuthzAuthorization } from './ext-authz-authorization.js';
export { peerAuthentication } from './peer-authentication.js';
export { policyAuthorization } from './policy-authorization.js';
export { requestLimits } from './request-limits.js';
export { requestAuthority, requestHeaderChecks, underscoreHeaderNames, underscoreRefusal, type UnderscoreHeaderAction } from './request-header-checks.js';
export type { FilterEnvironment, FilterFactory, FilterResponse, HttpFilter } from './http-filter.js';

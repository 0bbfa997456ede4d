// The per-request filter chain and its filters.
export { chainOf, replyResponse, runRequestSide, runResponseSide, type BodyReader, type Chain, type FilterResult, type HopContext, type HopDecision, type ResponseBuffering } from './chain.js';
export { extAuthzAuthorization } from './ext-authz-authorization.js';
export { peerAuthentication } from './peer-authentication.js';
export { policyAuthorization } from './policy-authorization.js';
export { requestLimits } from './request-limits.js';
export { requestAuthority, requestHeaderChecks, underscoreHeaderNames, underscoreRefusal, type UnderscoreHeaderAction } from './request-header-checks.js';
export type { FilterEnvironment, FilterFactory, FilterResponse, HttpFilter } from './http-filter.js';

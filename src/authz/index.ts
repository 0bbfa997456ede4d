// The policy engine and what it decides, with nothing of Envoy in it: the ext_authz server and client
// (./ext-authz) are adapters above the filter runtime, imported from there by the few that serve or call Envoy's API.
export * from './types.js';
export * from './policy/index.js';
export { API_KEY_NAME_RULE, API_KEY_PRINCIPAL_PREFIX, apiKeyPrincipal, isApiKeyName } from './api-key-principal.js';
export { decisionSummary, ruleOf, type DecisionOutcome, type DecisionSummary } from './decision-summary.js';
export { PolicyReloader, type ActivePolicy, type PolicyLoader, type PolicyReloadStats } from './policy-reloader.js';

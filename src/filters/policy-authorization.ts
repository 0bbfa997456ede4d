import type { ActivePolicy, Decision } from '../authz/index.js';
import { buildCheckResponse } from '../authz/ext-authz/check-response.js';
import { decisionSummary } from '../authz/ext-authz/decision-summary.js';
import type { LocalReply } from './local-reply.js';
import { PRINCIPAL_HEADER } from './identity-headers.js';
import type { FilterResult, HopContext } from './chain.js';
import type { HttpFilter } from './http-filter.js';

/**
 * The in-process policy engine. Denials are answered exactly as Envoy answers them from meshward's ext_authz
 * server (the same status, body and headers), because both are built by buildCheckResponse: one mapping for
 * every transport. `currentPolicy` is read once per request, so a reload never mixes two policies in one decision.
 * `observeLatency` gets the time each decision took (for the authorization latency histogram).
 */
export function policyAuthorization(currentPolicy: () => ActivePolicy, observeLatency?: (ms: number) => void): HttpFilter {
  return {
    name: 'authz',
    onRequest: (ctx) => {
      const policy = currentPolicy();
      const started = observeLatency === undefined ? 0 : performance.now();
      return policy.engine.decide(ctx.request).then(
        (decision) => {
          observeLatency?.(performance.now() - started);
          return conclude(ctx, decision, policy.explainDenials);
        },
        // The engine promises never to reject; if it does anyway, deny as the engine does on an error.
        () => conclude(ctx, { kind: 'deny', rule: 'error', reason: 'policy engine failed' }, policy.explainDenials),
      );
    },
  };
}

function conclude(ctx: HopContext, decision: Decision, explainDenials: boolean): FilterResult {
  ctx.decision = decisionSummary(decision);
  if (decision.kind === 'allow') {
    if (decision.principal !== undefined) ctx.setHeaders.push([PRINCIPAL_HEADER, decision.principal]);
    return undefined;
  }
  return denialReply(decision, ctx.requestId, explainDenials);
}

function denialReply(decision: Decision, requestId: string, explainDenials: boolean): LocalReply {
  const denied = buildCheckResponse(decision, { requestId, explainDenials }).deniedResponse!;
  const headers: Record<string, string> = {};
  for (const option of denied.headers) headers[option.header.key] = option.header.value;
  return { status: denied.status.code, headers, body: denied.body };
}

import type { ActivePolicy, Decision } from '../../authz/index.js';
import { decisionSummary } from '../../authz/index.js';
import type { FilterResult, HopContext } from '../chain.js';
import type { HttpFilter } from '../http-filter.js';
import { PRINCIPAL_HEADER } from '../identity-headers.js';
import { decisionReply } from './decision-reply.js';

/**
 * The in-process policy engine. Denials are answered exactly as Envoy answers them from meshward's ext_authz
 * server (the same status, body and headers), because both send decisionReply's reply. `currentPolicy` is read once
 * per request, so a reload never mixes two policies in one decision. `observeLatency` gets the time each decision
 * took (for the authorization latency histogram).
 */
export function policyAuthorization(currentPolicy: () => ActivePolicy, observeLatency?: (ms: number) => void): HttpFilter {
  return {
    name: 'authz',
    onRequest: (ctx) => {
      const policy = currentPolicy();
      const started = observeLatency === undefined ? 0 : performance.now();
      const decided = (decision: Decision) => {
        observeLatency?.(performance.now() - started);
        return conclude(ctx, decision, policy.explainDenials);
      };
      // The engine promises never to throw or reject; if it does anyway, deny as the engine does on an error.
      const failed = () => conclude(ctx, { kind: 'deny', rule: 'error', reason: 'policy engine failed' }, policy.explainDenials);
      let decision: Decision | Promise<Decision>;
      try {
        decision = policy.engine.decide(ctx.request);
      } catch {
        return failed();
      }
      // A policy without a JWT to verify decides synchronously: no promise on the request's way.
      return decision instanceof Promise ? decision.then(decided, failed) : decided(decision);
    },
  };
}

function conclude(ctx: HopContext, decision: Decision, explainDenials: boolean): FilterResult {
  ctx.decision = decisionSummary(decision);
  if (decision.kind === 'allow' && decision.principal !== undefined) ctx.setHeaders.push([PRINCIPAL_HEADER, decision.principal]);
  return decisionReply(decision, { requestId: ctx.requestId, explainDenials });
}

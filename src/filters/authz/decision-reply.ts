import type { Decision } from '../../authz/index.js';
import { jsonReply, replies, type LocalReply } from '../local-reply.js';

// An authorization decision as an answer to the client, in terms of HTTP alone: the reply a denial gets. The
// sidecar sends it as it is; the ext_authz server wraps the same reply in Envoy's CheckResponse (check-response.ts),
// so a denial reads the same whichever one made it.

const DENIED_BY_HEADER = 'x-meshward-denied-by';

export interface DecisionContext {
  requestId: string;
  /** The policy's `explainDenials`: whether a denial may name the rule or limit that decided it. */
  explainDenials: boolean;
}

/** The reply for a decision that refuses the request; undefined for an allow. */
export function decisionReply(decision: Decision, { requestId, explainDenials }: DecisionContext): LocalReply | undefined {
  switch (decision.kind) {
    case 'allow':
      return undefined;
    case 'deny':
      return jsonReply(403, explainDenials ? { error: 'forbidden', rule: decision.rule, requestId } : { error: 'forbidden', requestId }, {
        [DENIED_BY_HEADER]: explainDenials ? decision.rule : 'policy',
      });
    case 'unauthenticated':
      return jsonReply(401, { error: 'unauthenticated', requestId }, { 'www-authenticate': decision.challenge });
    case 'invalid':
      return replies.badRequest(requestId, decision.reason);
    case 'rate_limited':
      return jsonReply(429, explainDenials ? { error: 'rate_limited', limit: decision.limit, requestId } : { error: 'rate_limited', requestId }, {
        'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterSeconds))),
      });
  }
}

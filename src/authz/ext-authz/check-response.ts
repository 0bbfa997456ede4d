// Decision → CheckResponse: the reply a decision gets (filters/authz/decision-reply.ts, the same the sidecar sends)
// in Envoy's terms. Pure. The field names are protobufjs's camelCase names of Envoy's fields.
//
// What Envoy does with the answer (source/extensions/filters/http/ext_authz/ext_authz.cc, onComplete):
// - status.code 0 allows; the OkHttpResponse's `headers` are applied to the upstream request FIRST, then
//   `headers_to_remove`. So a header must never be in both, or the value meshward sets is removed again.
//   When there is a verified principal, `x-meshward-principal` is set with OVERWRITE_IF_EXISTS_OR_ADD, which
//   replaces every incoming copy; when there is none, it is listed in `headers_to_remove` instead. Either way
//   a forged copy never reaches the upstream and a real one always does.
// - any other code denies: Envoy answers the client with the DeniedHttpResponse (status, headers, body).
//   Every denial is a CheckResponse with a non-zero code, never a failed RPC, because an Envoy configured
//   with failure_mode_allow lets the request through when the RPC itself fails.
import { decisionReply, type DecisionContext } from '../../filters/authz/decision-reply.js';
import { PRINCIPAL_HEADER } from '../../filters/identity-headers.js';
import { replies, type LocalReply } from '../../filters/local-reply.js';
import type { Decision } from '../types.js';

// gRPC status codes (grpc/doc/statuscodes.md) as numbers: this mapping runs in every sidecar, and importing
// grpc-js's enum for five constants would load all of grpc-js (megabytes of memory) into each of them.
const status = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16 } as const;

// envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

interface HeaderValueOption {
  header: { key: string; value: string };
  appendAction: number;
}

export interface CheckResponseMessage {
  status: { code: number; message?: string };
  okResponse?: { headers?: HeaderValueOption[]; headersToRemove?: string[] };
  deniedResponse?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
}

export function buildCheckResponse(decision: Decision, context: DecisionContext): CheckResponseMessage {
  if (decision.kind === 'allow') return allowResponse(decision.principal);
  const reply = decisionReply(decision, context)!;
  switch (decision.kind) {
    case 'deny':
      return denied(status.PERMISSION_DENIED, context.explainDenials ? `denied by rule ${decision.rule}` : 'denied by policy', reply);
    case 'unauthenticated':
      return denied(status.UNAUTHENTICATED, decision.reason, reply);
    case 'invalid':
      // INVALID_ARGUMENT rather than PERMISSION_DENIED, so that Envoy's logs tell a broken request from a policy
      // decision; to Envoy both deny.
      return denied(status.INVALID_ARGUMENT, decision.reason, reply);
    case 'rate_limited':
      return denied(status.RESOURCE_EXHAUSTED, 'rate limited', reply);
  }
}

/** For a request that cannot be judged: malformed (no attributes, no method, bytes that do not decode). */
export function badRequestResponse(reason: string, requestId: string): CheckResponseMessage {
  return denied(status.INVALID_ARGUMENT, reason, replies.badRequest(requestId, reason));
}

/** An allow depends on nothing but the principal it passes on. */
export function allowResponse(principal: string | undefined): CheckResponseMessage {
  return principal === undefined
    ? { status: { code: status.OK }, okResponse: { headersToRemove: [PRINCIPAL_HEADER] } }
    : { status: { code: status.OK }, okResponse: { headers: [overwrite(PRINCIPAL_HEADER, principal)] } };
}

function denied(code: (typeof status)[keyof typeof status], message: string, reply: LocalReply): CheckResponseMessage {
  const headers = [overwrite('content-type', 'application/json')];
  for (const [key, value] of Object.entries(reply.headers ?? {})) headers.push(overwrite(key, value));
  return { status: { code, message }, deniedResponse: { status: { code: reply.status }, headers, body: reply.body } };
}

function overwrite(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD };
}

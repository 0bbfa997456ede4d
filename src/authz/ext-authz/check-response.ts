// Decision → CheckResponse. Pure. The field names are protobufjs's camelCase names of Envoy's fields.
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
import type { Decision } from '../types.js';

// gRPC status codes (grpc/doc/statuscodes.md) as numbers: this mapping runs in every sidecar, and importing
// grpc-js's enum for five constants would load all of grpc-js (megabytes of memory) into each of them.
const status = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16 } as const;

export const PRINCIPAL_HEADER = 'x-meshward-principal';
export const DENIED_BY_HEADER = 'x-meshward-denied-by';

// envoy.type.v3.StatusCode values and envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.
const HTTP_BAD_REQUEST = 400;
const HTTP_UNAUTHORIZED = 401;
const HTTP_FORBIDDEN = 403;
const HTTP_TOO_MANY_REQUESTS = 429;
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

export interface ResponseContext {
  requestId: string;
  /** The policy's `explainDenials`: whether a denial may name the rule or limit that decided it. */
  explainDenials: boolean;
}

export function buildCheckResponse(decision: Decision, context: ResponseContext): CheckResponseMessage {
  const { requestId, explainDenials } = context;
  switch (decision.kind) {
    case 'allow':
      return allowResponse(decision.principal);
    case 'deny':
      return denied(
        status.PERMISSION_DENIED,
        explainDenials ? `denied by rule ${decision.rule}` : 'denied by policy',
        HTTP_FORBIDDEN,
        explainDenials
          ? { error: 'forbidden', rule: decision.rule, requestId }
          : { error: 'forbidden', requestId },
        [overwrite(DENIED_BY_HEADER, explainDenials ? decision.rule : 'policy')],
      );
    case 'unauthenticated':
      return denied(status.UNAUTHENTICATED, decision.reason, HTTP_UNAUTHORIZED, { error: 'unauthenticated', requestId }, [
        overwrite('www-authenticate', decision.challenge),
      ]);
    case 'invalid':
      return badRequestResponse(decision.reason, requestId);
    case 'rate_limited':
      return denied(
        status.RESOURCE_EXHAUSTED,
        'rate limited',
        HTTP_TOO_MANY_REQUESTS,
        explainDenials ? { error: 'rate_limited', limit: decision.limit, requestId } : { error: 'rate_limited', requestId },
        [overwrite('retry-after', String(Math.max(1, Math.ceil(decision.retryAfterSeconds))))],
      );
  }
}

/**
 * For a request that cannot be judged: malformed (no attributes, no method, bytes that do not decode) or
 * refused by the engine as invalid (a path that does not normalise). INVALID_ARGUMENT rather than
 * PERMISSION_DENIED, so that Envoy's logs tell a broken request from a policy decision; to Envoy both deny.
 */
export function badRequestResponse(reason: string, requestId: string): CheckResponseMessage {
  return denied(status.INVALID_ARGUMENT, reason, HTTP_BAD_REQUEST, { error: 'bad_request', reason, requestId }, []);
}

/** An allow depends on nothing but the principal it passes on. */
export function allowResponse(principal: string | undefined): CheckResponseMessage {
  return principal === undefined
    ? { status: { code: status.OK }, okResponse: { headersToRemove: [PRINCIPAL_HEADER] } }
    : { status: { code: status.OK }, okResponse: { headers: [overwrite(PRINCIPAL_HEADER, principal)] } };
}

function denied(
  code: (typeof status)[keyof typeof status],
  message: string,
  httpStatus: number,
  body: Record<string, string>,
  headers: HeaderValueOption[],
): CheckResponseMessage {
  return {
    status: { code, message },
    deniedResponse: {
      status: { code: httpStatus },
      headers: [overwrite('content-type', 'application/json'), ...headers],
      body: JSON.stringify(body),
    },
  };
}

function overwrite(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD };
}

// Responses the sidecar makes itself. Bodies are small JSON documents that say what happened in terms a caller can
// act on, and never how: no stack traces, no upstream addresses, no internal error text.

export interface LocalReply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

export function jsonReply(status: number, body: Record<string, unknown>, headers?: Record<string, string>): LocalReply {
  return { status, body: JSON.stringify(body), ...(headers ? { headers } : {}) };
}

export const replies = {
  badRequest: (requestId: string, reason: string) => jsonReply(400, { error: 'bad_request', reason, requestId }),
  forbidden: (requestId: string, reason: string) => jsonReply(403, { error: 'forbidden', reason, requestId }),
  requestTimeout: (requestId: string) => jsonReply(408, { error: 'request_timeout', reason: 'the request did not arrive in time', requestId }),
  headersTooLarge: (requestId: string, limit: number) => jsonReply(431, { error: 'request_header_fields_too_large', limitBytes: limit, requestId }),
  tooLarge: (requestId: string, limit: number) => jsonReply(413, { error: 'payload_too_large', limitBytes: limit, requestId }),
  noRoute: (requestId: string, host: string) =>
    jsonReply(502, { error: 'no_route', reason: `no outbound route for host "${host}"`, requestId }),
  badGateway: (requestId: string) => jsonReply(502, { error: 'bad_gateway', reason: 'the destination failed', requestId }),
  serverIdentityMismatch: (requestId: string, reason: string) => jsonReply(502, { error: 'server_identity_mismatch', reason, requestId }),
  unavailable: (requestId: string, what: string) => jsonReply(503, { error: 'unavailable', reason: `${what} is unavailable`, requestId }),
  internal: (requestId: string) => jsonReply(500, { error: 'internal', reason: 'the request could not be handled', requestId }),
  gatewayTimeout: (requestId: string) => jsonReply(504, { error: 'gateway_timeout', reason: 'the upstream did not answer in time', requestId }),
} as const;

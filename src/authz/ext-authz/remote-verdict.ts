// CheckResponse → what the sidecar does with the request. Pure. Read as Envoy reads it (ext_authz.cc,
// onComplete): status.code 0 allows with the OkHttpResponse's header changes, any other code denies with the
// DeniedHttpResponse. The answer comes from the network, so it is checked before anything in it is used:
// - an answer that is not a clear denial and cannot be applied as sent (no status, an OK code next to a
//   denied_response, header names or values the sidecar cannot send) is an `error`: the caller fails closed;
// - a denial stays a denial whatever else is wrong with it: it never becomes an `error`, which a caller
//   configured with failOpen would let through. Parts that cannot be sent are replaced (403) or dropped.
import { validateHeaderName, validateHeaderValue } from 'node:http';

export type RemoteVerdict =
  | { kind: 'allow'; setHeaders: Array<[string, string]>; removeHeaders: string[] }
  | { kind: 'deny'; httpStatus: number; headers: Array<[string, string]>; body: string; grpcCode: number }
  /** Unreachable, deadline exceeded, an answer that cannot be applied: the caller decides (deny 503 unless failOpen). */
  | { kind: 'error'; reason: string };

// The decoded shapes (protobufjs's camelCase names). Unset message fields decode as null; a decoder that
// leaves them out entirely is handled too.
interface HeaderValueOptionMessage {
  header?: { key?: string; value?: string; rawValue?: Uint8Array | null } | null;
}
export interface ReceivedCheckResponse {
  status?: { code?: number; message?: string } | null;
  okResponse?: { headers?: HeaderValueOptionMessage[] | null; headersToRemove?: string[] | null } | null;
  deniedResponse?: { status?: { code?: number } | null; headers?: HeaderValueOptionMessage[] | null; body?: string } | null;
}

const GRPC_OK = 0;
const HTTP_FORBIDDEN = 403;

export function toRemoteVerdict(message: ReceivedCheckResponse): RemoteVerdict {
  const code = message.status?.code;
  if (code === undefined || code === null) return { kind: 'error', reason: 'the CheckResponse has no status' };
  return code === GRPC_OK ? allowVerdict(message) : denyVerdict(code, message.deniedResponse);
}

/**
 * Every header the server sets is set, replacing any copy the request carries, whatever its append_action:
 * for the identity headers an authorization server sets, appending to a copy the caller sent would let a
 * forged value through.
 */
function allowVerdict(message: ReceivedCheckResponse): RemoteVerdict {
  if (message.deniedResponse) return { kind: 'error', reason: 'the CheckResponse allows (status OK) but carries a denied_response' };
  const ok = message.okResponse;
  const setHeaders: Array<[string, string]> = [];
  for (const option of ok?.headers ?? []) {
    const header = sendableHeader(option);
    if (typeof header === 'string') return { kind: 'error', reason: `ok_response.headers: ${header}` };
    setHeaders.push(header);
  }
  const removeHeaders: string[] = [];
  for (const name of ok?.headersToRemove ?? []) {
    const problem = headerNameProblem(name);
    if (problem) return { kind: 'error', reason: `ok_response.headers_to_remove: ${problem}` };
    removeHeaders.push(name.toLowerCase());
  }
  return { kind: 'allow', setHeaders, removeHeaders };
}

function denyVerdict(grpcCode: number, denied: ReceivedCheckResponse['deniedResponse']): RemoteVerdict {
  const headers: Array<[string, string]> = [];
  for (const option of denied?.headers ?? []) {
    const header = sendableHeader(option);
    if (typeof header !== 'string') headers.push(header);
  }
  return { kind: 'deny', httpStatus: finalHttpStatus(denied?.status?.code), headers, body: denied?.body ?? '', grpcCode };
}

/** Envoy answers 403 when the server names no status (envoy.type.v3.StatusCode Empty); so does a status no HTTP response can have. */
function finalHttpStatus(code: number | undefined): number {
  return code !== undefined && Number.isInteger(code) && code >= 200 && code <= 599 ? code : HTTP_FORBIDDEN;
}

/** The header as [lower-case name, value], or what is wrong with it. */
function sendableHeader(option: HeaderValueOptionMessage): [string, string] | string {
  const header = option.header;
  const name = header?.key ?? '';
  const nameProblem = headerNameProblem(name);
  if (nameProblem) return nameProblem;
  const value = header?.value || (header?.rawValue?.length ? Buffer.from(header.rawValue).toString('utf8') : '');
  try {
    validateHeaderValue(name, value);
  } catch {
    return `the value of ${JSON.stringify(name)} has characters no HTTP header may carry`;
  }
  return [name.toLowerCase(), value];
}

function headerNameProblem(name: string): string | undefined {
  try {
    validateHeaderName(name);
    return undefined;
  } catch {
    return name === '' ? 'a header has no name' : `${JSON.stringify(name)} is not a valid HTTP header name`;
  }
}

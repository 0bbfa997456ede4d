// CheckRequest → AuthzRequest. Pure. What Envoy sends is input from the network: every field may be absent,
// and anything the policy needs that is missing makes the request malformed (denied), never guessed.
import { parseSpiffeId } from '../../spiffe/index.js';
import { requestIdOf } from '../../telemetry/index.js';
import type { AuthzRequest } from '../types.js';

// The decoded shapes of the fields meshward reads (camelCase, as protobufjs names them). Unset message fields
// decode as null, unset scalars as their zero value; a decoder that omits them entirely is handled too.
interface SocketAddressMessage {
  address?: string;
  portValue?: number;
}
interface PeerMessage {
  address?: { socketAddress?: SocketAddressMessage | null } | null;
  principal?: string;
}
interface HeaderValueMessage {
  key?: string;
  value?: string;
  rawValue?: Uint8Array;
}
interface HttpRequestMessage {
  id?: string;
  method?: string;
  headers?: Record<string, string> | null;
  headerMap?: { headers?: HeaderValueMessage[] | null } | null;
  path?: string;
  host?: string;
  query?: string;
}
export interface CheckRequestMessage {
  attributes?: {
    source?: PeerMessage | null;
    destination?: PeerMessage | null;
    request?: { http?: HttpRequestMessage | null } | null;
    contextExtensions?: Record<string, string> | null;
  } | null;
}

const REQUEST_ID_HEADER = 'x-request-id';

export type MappedRequest = { ok: true; request: AuthzRequest; requestId: string } | { ok: false; reason: string; requestId: string };

/**
 * Maps what Envoy asks about onto the engine's request. The request id is the request's `x-request-id` header
 * (what the sidecars and the app see, so that their records line up), else `request.http.id`, when that is a
 * safe id (telemetry's requestIdOf: never a credential), else one from `newRequestId`, so that every answer, log
 * line and audit record can be correlated.
 */
export function toAuthzRequest(message: CheckRequestMessage, newRequestId: () => string): MappedRequest {
  const attributes = message.attributes;
  const http = attributes?.request?.http;
  const headers = http ? requestHeaders(http) : undefined;
  const requestId = requestIdOf(headers?.[REQUEST_ID_HEADER] || http?.id, newRequestId).id;
  if (!attributes) return { ok: false, reason: 'CheckRequest has no attributes', requestId };
  if (!http || !headers) return { ok: false, reason: 'CheckRequest has no attributes.request.http', requestId };
  if (!http.method) return { ok: false, reason: 'attributes.request.http.method is empty', requestId };
  if (!http.path) return { ok: false, reason: 'attributes.request.http.path is empty', requestId };

  const request: AuthzRequest = {
    method: http.method,
    host: http.host || headers[':authority'] || headers.host || '',
    path: http.query && !http.path.includes('?') ? `${http.path}?${http.query}` : http.path,
    headers,
    requestId,
  };
  const principal = verifiedPrincipal(attributes.source?.principal);
  if (principal !== undefined) request.principal = principal;
  const sourceIp = attributes.source?.address?.socketAddress?.address;
  if (sourceIp) request.sourceIp = sourceIp;
  const destinationPort = attributes.destination?.address?.socketAddress?.portValue;
  if (destinationPort) request.destinationPort = destinationPort;
  const extensions = attributes.contextExtensions;
  if (extensions && Object.keys(extensions).length > 0) request.contextExtensions = extensions;
  return { ok: true, request, requestId };
}

/**
 * Envoy puts the peer certificate's URI SAN in `principal`, or its subject when there is no URI SAN. Only a
 * SPIFFE ID is an identity to meshward; anything else is treated as no identity, which no principal
 * pattern matches (fail closed).
 */
function verifiedPrincipal(principal: string | undefined): string | undefined {
  if (!principal) return undefined;
  let valid = principalVerdicts.get(principal);
  if (valid === undefined) {
    valid = parseSpiffeId(principal).ok;
    if (principalVerdicts.size >= MAX_REMEMBERED_PRINCIPALS) principalVerdicts.clear();
    principalVerdicts.set(principal, valid);
  }
  return valid ? principal : undefined;
}

// An Envoy sends the same few principals over and over: each is parsed once, not on every Check.
const MAX_REMEMBERED_PRINCIPALS = 10_000;
const principalVerdicts = new Map<string, boolean>();

/**
 * Headers with lower-case names. Envoy sends them lower-case already, so the decoded map is used as it is
 * unless a name needs lowering (the engine reads headers as own properties only, so the map's prototype does
 * not leak into matching). A newer Envoy sends `header_map` instead; repeated names are joined with ",".
 */
function requestHeaders(http: HttpRequestMessage): Record<string, string> {
  const map = http.headers;
  if (map && Object.keys(map).length > 0) return hasUpperCaseName(map) ? lowerCaseNames(map) : map;
  const headers: Record<string, string> = {};
  for (const entry of http.headerMap?.headers ?? []) {
    if (!entry.key) continue;
    const key = entry.key.toLowerCase();
    const value = entry.value || (entry.rawValue?.length ? Buffer.from(entry.rawValue).toString('utf8') : '');
    headers[key] = Object.hasOwn(headers, key) ? `${headers[key]},${value}` : value;
  }
  return headers;
}

const UPPER_CASE = /[A-Z]/;

function hasUpperCaseName(map: Record<string, string>): boolean {
  for (const key in map) if (UPPER_CASE.test(key)) return true;
  return false;
}

function lowerCaseNames(map: Record<string, string>): Record<string, string> {
  const lowered: Record<string, string> = {};
  for (const key of Object.keys(map)) lowered[key.toLowerCase()] = map[key]!;
  return lowered;
}

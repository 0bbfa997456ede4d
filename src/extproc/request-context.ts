// A request_headers message → the HopContext the chain runs on, as a listener would make it from the request. Pure.
//
// Who is calling comes from the attributes Envoy sends when its ext_proc filter lists them in request_attributes
// (deploy/envoy/envoy-extproc.yaml does):
// - principal: `connection.uri_san_peer_certificate`, the URI SAN of the client certificate Envoy verified, when it
//   is a SPIFFE ID. Anything else, or no attribute, is no identity, which no principal pattern matches (fail
//   closed), as with meshward authz.
// - sourceIp: the address of `source.address` (Envoy's "IP:PORT" of the downstream connection). Without it the
//   request has no source address, and what judges addresses refuses it (ipList: "the client address is unknown").
//   X-Forwarded-For is no source address: anyone can send one (ipList reads it from trusted proxies only).
// - destinationPort: `destination.port`.
// ctx.peer stays undefined: the TLS peer is Envoy's to verify, and filters read who called from request.principal.
import { isIP } from 'node:net';
import type { AuthzRequest } from '../authz/index.js';
import type { HopContext } from '../filters/index.js';
import { parseSpiffeId } from '../spiffe/index.js';
import { requestIdOf, traceContextOf } from '../telemetry/index.js';
import { joinedHeaders, type ReceivedHeaders } from './header-map.js';
import type { ProcessingRequestMessage } from './messages.js';

/** The key Envoy's ext_proc filter puts its attributes under. */
export const ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';

/** The request_attributes read: the ext_proc filter's config lists them (deploy/envoy/envoy-extproc.yaml). */
export const REQUEST_ATTRIBUTES = ['source.address', 'destination.port', 'connection.uri_san_peer_certificate'] as const;

export type MappedContext = { ok: true; ctx: HopContext } | { ok: false; reason: string };

export function hopContextOf(received: ReceivedHeaders, attributes: ProcessingRequestMessage['attributes']): MappedContext {
  const headers = joinedHeaders(received.raw);
  const method = headers[':method'];
  const path = headers[':path'];
  if (!method) return { ok: false, reason: 'request_headers has no :method' };
  if (!path) return { ok: false, reason: 'request_headers has no :path' };
  const { id: requestId } = requestIdOf(headers['x-request-id']);
  const request: AuthzRequest = { method, host: headers[':authority'] ?? headers.host ?? '', path, headers, requestId };
  const fields = attributes?.[ATTRIBUTES_KEY]?.fields;
  const [source, destination, peerUriSan] = REQUEST_ATTRIBUTES;
  const principal = fields?.[peerUriSan]?.stringValue;
  if (principal && parseSpiffeId(principal).ok) request.principal = principal;
  const sourceIp = addressOf(fields?.[source]?.stringValue);
  if (sourceIp !== undefined) request.sourceIp = sourceIp;
  const port = fields?.[destination]?.numberValue;
  if (port !== undefined && Number.isInteger(port) && port > 0 && port < 65536) request.destinationPort = port;
  const declared = headers['content-length'];
  return {
    ok: true,
    ctx: {
      request,
      requestId,
      traceId: traceContextOf(headers.traceparent).traceId,
      peer: undefined,
      rawHeaders: received.raw,
      declaredBodyBytes: declared !== undefined && /^\d{1,15}$/.test(declared) ? Number(declared) : undefined,
      setHeaders: [],
      removeHeaders: [],
      filtersEntered: 0,
    },
  };
}

/** The IP of "IP:PORT", "[IPv6]:PORT" or a bare IP; undefined for anything else (a Unix socket's path). */
export function addressOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const host = text.startsWith('[') ? text.slice(1, text.indexOf(']')) : isIP(text) !== 0 ? text : text.slice(0, text.lastIndexOf(':'));
  return isIP(host) !== 0 ? host : undefined;
}

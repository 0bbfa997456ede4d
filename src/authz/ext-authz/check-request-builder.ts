// AuthzRequest → CheckRequest: what the sidecar asks a remote ext_authz server. Pure. It fills the fields the
// way Envoy does for the same request, so any ext_authz server reads it as it reads Envoy's: the request
// target with its query in `path` (Envoy leaves `query` empty), lower-case header names (AuthzRequest's
// contract already), the verified SPIFFE ID as the source principal.
import type { AuthzRequest } from '../types.js';

/** What the sidecar knows about a request beyond AuthzRequest, passed on for servers that read it. */
export interface CheckExtras {
  /** `http` or `https`. */
  scheme?: string;
  /** As Envoy spells it: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`. */
  protocol?: string;
  /** The caller's certificate, PEM or URL-encoded PEM (as in x-forwarded-client-cert); sent URL-encoded, as Envoy does. */
  peerCertificate?: string;
}

// The fields set here, in protobufjs's camelCase names. Unset fields are left out, not set to empty values,
// so that a server sees exactly what it would see from an Envoy that lacks the information.
interface SocketAddressFields {
  address?: string;
  portValue?: number;
}
interface PeerFields {
  address?: { socketAddress: SocketAddressFields };
  principal?: string;
  certificate?: string;
}
interface HttpRequestFields {
  id?: string;
  method: string;
  headers: Readonly<Record<string, string>>;
  path: string;
  host: string;
  scheme?: string;
  protocol?: string;
}
export interface CheckRequestFields {
  attributes: {
    source?: PeerFields;
    destination?: PeerFields;
    request: { http: HttpRequestFields };
    contextExtensions?: Readonly<Record<string, string>>;
  };
}

const NO_EXTRAS: CheckExtras = {};

export function buildCheckRequest(request: AuthzRequest, extras: CheckExtras = NO_EXTRAS): CheckRequestFields {
  const http: HttpRequestFields = { method: request.method, headers: request.headers, path: request.path, host: request.host };
  if (request.requestId) http.id = request.requestId;
  if (extras.scheme) http.scheme = extras.scheme;
  if (extras.protocol) http.protocol = extras.protocol;

  const attributes: CheckRequestFields['attributes'] = { request: { http } };
  const source = sourcePeer(request, extras.peerCertificate);
  if (source) attributes.source = source;
  if (request.destinationPort) attributes.destination = { address: { socketAddress: { portValue: request.destinationPort } } };
  if (request.contextExtensions && Object.keys(request.contextExtensions).length > 0) {
    attributes.contextExtensions = request.contextExtensions;
  }
  return { attributes };
}

function sourcePeer(request: AuthzRequest, peerCertificate: string | undefined): PeerFields | undefined {
  if (!request.principal && !request.sourceIp && !peerCertificate) return undefined;
  const peer: PeerFields = {};
  if (request.principal) peer.principal = request.principal;
  if (request.sourceIp) peer.address = { socketAddress: { address: request.sourceIp } };
  if (peerCertificate) peer.certificate = urlEncodedPem(peerCertificate);
  return peer;
}

/** PEM has line breaks, its URL encoding has none: encode only what is not encoded yet. */
function urlEncodedPem(certificate: string): string {
  return certificate.includes('\n') ? encodeURIComponent(certificate) : certificate;
}

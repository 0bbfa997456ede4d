// The headers that carry a request's verified identity to the app. Only the inbound sidecar that verified the peer's
// certificate writes them; whatever a client sent under these names is removed, on every listener (hop-headers.ts
// for what is forwarded; the header checks for what filters see). A name spelled with underscores for one of the
// headers meshward sets (`x_forwarded_client_cert`) is treated the same: WSGI/CGI-style servers merge `_` and `-`
// spellings into one variable.

export const XFCC_HEADER = 'x-forwarded-client-cert';
export const PRINCIPAL_HEADER = 'x-meshward-principal';

/** The identity headers a client can never set. */
export const IDENTITY_HEADERS: ReadonlySet<string> = new Set([XFCC_HEADER, PRINCIPAL_HEADER]);

/** What meshward itself sets on a forwarded request, compared after `_` → `-`. */
export const SET_BY_MESHWARD: ReadonlySet<string> = new Set([XFCC_HEADER, PRINCIPAL_HEADER, 'x-request-id', 'traceparent']);

/** Envoy's format: By=<this sidecar's ID>;Hash=<sha256 of the peer certificate, hex>;URI=<peer ID>. */
export function xfccValue(ownId: string, certHash: string, peerId: string): string {
  return `By=${ownId};Hash=${certHash};URI=${peerId}`;
}

import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { PeerIdentity } from '../filters/peer-identity.js';
import { svidIdentity } from '../spiffe/index.js';

// Who is on the other end of an inbound connection. The TLS stack has already verified the chain against the trust
// bundle (and refused a missing, untrusted or expired certificate); what is left is the X509-SVID check (exactly
// one spiffe:// URI SAN, in our trust domain, not a CA). It is done once per connection and remembered: every
// request on the connection comes from the same certificate.

const identities = new WeakMap<object, PeerIdentity>();

/** `socket` may be an HTTP/2 session's socket proxy; it is keyed as given and read through. */
export function peerIdentity(socket: TLSSocket, trustDomain: string): PeerIdentity {
  let identity = identities.get(socket);
  if (identity === undefined) {
    identity = identify(socket, trustDomain);
    identities.set(socket, identity);
  }
  return identity;
}

function identify(socket: TLSSocket, trustDomain: string): PeerIdentity {
  const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (cert === undefined) return { ok: false, reason: 'the client presented no certificate' };
  const id = svidIdentity(cert.raw, trustDomain);
  if (!id.ok) return { ok: false, reason: id.error };
  return { ok: true, spiffeId: id.value.uri, certHash: createHash('sha256').update(cert.raw).digest('hex') };
}

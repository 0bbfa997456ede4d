// Who is on the other end of a connection, as every filter reads it (ctx.peer). The listener works it out from the
// TLS socket once per connection (proxy/peer-identity.ts); filters only read it.

export type PeerIdentity =
  | { ok: true; spiffeId: string; /** SHA-256 of the peer certificate's DER, hex, for x-forwarded-client-cert. */ certHash: string }
  | { ok: false; reason: string };

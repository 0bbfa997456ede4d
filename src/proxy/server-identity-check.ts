import type { PeerCertificate } from 'node:tls';
import { svidIdentity } from '../spiffe/index.js';

/**
 * A TLS client's checkServerIdentity that trusts the server by its SPIFFE ID, not by a hostname: its certificate
 * (whose chain the TLS stack has verified against the bundle) must be an SVID for exactly `expected`.
 */
export function expectSpiffeId(expected: string, trustDomain: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const id = svidIdentity(cert.raw, trustDomain);
    if (!id.ok) return new Error(`the server's certificate is not an SVID: ${id.error}`);
    if (id.value.uri !== expected) return new ServerIdentityMismatch(expected, id.value.uri);
    return undefined;
  };
}

/** The destination proved another identity than its route names: a misrouting or an impostor, and worth a warning. */
export class ServerIdentityMismatch extends Error {
  readonly code = SERVER_IDENTITY_MISMATCH;
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`the server is ${actual}, not ${expected}`);
    this.name = 'ServerIdentityMismatch';
  }
}

export const SERVER_IDENTITY_MISMATCH = 'MESHWARD_SERVER_IDENTITY_MISMATCH';

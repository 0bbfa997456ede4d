import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { IdentitySnapshot } from '../identity/index.js';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** The SVID and bundle as a TLS context: what new handshakes use after a rotation. */
export function secureContextOptions(snapshot: IdentitySnapshot, minVersion: TlsVersion): SecureContextOptions {
  return { key: snapshot.svid.keyPem, cert: snapshot.svid.certChainPem, ca: snapshot.bundlePem, minVersion };
}

/** Server side of mTLS: a client certificate is required and must chain to the bundle. */
export function serverTlsOptions(snapshot: IdentitySnapshot, minVersion: TlsVersion, handshakeTimeoutMs: number): TlsOptions {
  return { ...secureContextOptions(snapshot, minVersion), requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs };
}

import type { SecureContextOptions } from 'node:tls';
import type { IdentitySnapshot } from '../identity/index.js';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** The SVID and bundle as a TLS context: what new handshakes use after a rotation. */
export function secureContextOptions(snapshot: IdentitySnapshot, minVersion: TlsVersion): SecureContextOptions {
  return { key: snapshot.svid.keyPem, cert: snapshot.svid.certChainPem, ca: snapshot.bundlePem, minVersion };
}


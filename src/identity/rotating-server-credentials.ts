import * as grpc from '@grpc/grpc-js';

// grpc-js server credentials whose certificate and trust bundle can be swapped while the server runs: new
// handshakes use the new material at once, open connections carry on. The client certificate is requested but
// not required, so that a caller may authenticate either by certificate or by a credential in the request; when
// one is presented, Node verifies its chain against the bundle and grpc-js only exposes verified certificates
// (call.getAuthContext()).

export interface ServerTlsMaterial {
  /** PEM private key. */
  key: string;
  /** PEM certificate chain, leaf first. */
  cert: string;
  /** PEM trust bundle for client certificates. */
  ca: string;
}

export interface ServerTlsPolicy {
  /** Refuse the handshake when the client sends no valid certificate. */
  requireClientCertificate: boolean;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export class RotatingServerCredentials extends grpc.ServerCredentials {
  private readonly minVersion: 'TLSv1.2' | 'TLSv1.3';

  constructor(initial: ServerTlsMaterial, policy: ServerTlsPolicy) {
    const minVersion = policy.minVersion ?? 'TLSv1.3';
    super(
      { requestCert: true, rejectUnauthorized: policy.requireClientCertificate, minVersion },
      { key: initial.key, cert: initial.cert, ca: initial.ca, minVersion },
    );
    this.minVersion = minVersion;
  }

  update(material: ServerTlsMaterial): void {
    this.updateSecureContextOptions({ key: material.key, cert: material.cert, ca: material.ca, minVersion: this.minVersion });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

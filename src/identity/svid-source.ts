// The one interface every identity provider (files on disk, the meshward CA, a Workload API) offers the data
// plane: the current SVID and trust bundle, and a change event. TLS contexts are rebuilt from it on change.

export interface Svid {
  spiffeId: string;
  /** PEM chain, leaf first. */
  certChainPem: string;
  /** PEM PKCS#8 private key; it never leaves the process that made it. */
  keyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IdentitySnapshot {
  svid: Svid;
  /** PEM roots to verify peers with. */
  bundlePem: string;
}

export interface SvidSource {
  current(): IdentitySnapshot | undefined;
  /** Called with every new snapshot (renewed SVID or changed bundle); returns a function that unsubscribes. */
  onChange(listener: (snapshot: IdentitySnapshot) => void): () => void;
  /** Updates that did not happen: file sets refused, CA renewals that failed (meshward_svid_rotation_failures_total). */
  failedUpdates(): number;
  close(): Promise<void>;
}

import { createPrivateKey } from 'node:crypto';
import type { IdentitySnapshot } from '../identity/index.js';
import { pemToDerList } from '../spiffe/index.js';

// The X.509-SVID profile's messages, encoded as the SPIFFE Workload API specification says: certificates as ASN.1
// DER concatenated (the leaf first), the key as unencrypted PKCS#8 DER. meshward federates with no other trust
// domain, so federated_bundles is empty, and it publishes no CRLs.

export interface X509SvidResponse {
  svids: Array<{ spiffe_id: string; x509_svid: Buffer; x509_svid_key: Buffer; bundle: Buffer; hint: string }>;
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}

export interface X509BundlesResponse {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}

export function x509SvidResponse(snapshot: IdentitySnapshot): X509SvidResponse {
  const { svid } = snapshot;
  return {
    svids: [
      {
        spiffe_id: svid.spiffeId,
        x509_svid: Buffer.concat(pemToDerList(svid.certChainPem)),
        x509_svid_key: createPrivateKey(svid.keyPem).export({ type: 'pkcs8', format: 'der' }),
        bundle: Buffer.concat(pemToDerList(snapshot.bundlePem)),
        hint: '',
      },
    ],
    crl: [],
    federated_bundles: {},
  };
}

/** The bundle of the sidecar's own trust domain, keyed by the trust domain's SPIFFE ID. */
export function x509BundlesResponse(snapshot: IdentitySnapshot, trustDomain: string): X509BundlesResponse {
  return { crl: [], bundles: { [`spiffe://${trustDomain}`]: Buffer.concat(pemToDerList(snapshot.bundlePem)) } };
}

import type { IdentitySnapshot } from '../identity/index.js';

// What each SDS resource name means, with the names Istio's agent and SPIRE's agent serve, so that an Envoy
// config written for either works unchanged: `default` (or the SVID's own SPIFFE ID) is the SVID and its key;
// `ROOTCA` (or the trust domain's ID, spiffe://TD) is the trust bundle to verify peers with. A name meaning
// neither is left out of the response (as SPIRE does): Envoy keeps waiting for it, and says so in its stats.

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const DEFAULT_SVID_NAME = 'default';
export const ROOT_CA_NAME = 'ROOTCA';

/** A Secret as proto-loader encodes it into a google.protobuf.Any. */
export interface SecretResource {
  '@type': typeof SECRET_TYPE_URL;
  name: string;
  tls_certificate?: { certificate_chain: { inline_bytes: Buffer }; private_key: { inline_bytes: Buffer } };
  validation_context?: { trusted_ca: { inline_bytes: Buffer } };
}

/**
 * The Secrets for `names`, each once, in the order asked. No name at all (an xDS wildcard request) means every
 * resource, under its SPIFFE name.
 */
export function secretsFor(names: readonly string[], snapshot: IdentitySnapshot, trustDomain: string): SecretResource[] {
  const svidNames = new Set([DEFAULT_SVID_NAME, snapshot.svid.spiffeId]);
  const bundleNames = new Set([ROOT_CA_NAME, `spiffe://${trustDomain}`]);
  const wanted = names.length > 0 ? new Set(names) : [snapshot.svid.spiffeId, `spiffe://${trustDomain}`];
  const secrets: SecretResource[] = [];
  for (const name of wanted) {
    if (svidNames.has(name)) {
      secrets.push({
        '@type': SECRET_TYPE_URL,
        name,
        tls_certificate: {
          certificate_chain: { inline_bytes: Buffer.from(snapshot.svid.certChainPem) },
          private_key: { inline_bytes: Buffer.from(snapshot.svid.keyPem) },
        },
      });
    } else if (bundleNames.has(name)) {
      secrets.push({ '@type': SECRET_TYPE_URL, name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(snapshot.bundlePem) } } });
    }
  }
  return secrets;
}

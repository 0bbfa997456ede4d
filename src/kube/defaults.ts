// What `meshward inject` and `meshward injector` assume when not told otherwise; they match deploy/kubernetes/.

/** Kubernetes' own default cluster domain, and the trust domain deploy/kubernetes/ gives the CA. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** The CA's Service in deploy/kubernetes/ca.yaml. */
export const DEFAULT_CA_ADDRESS = 'meshward-ca.meshward-system.svc:8443';

export function defaultImage(version: string): string {
  return `ghcr.io/meshward/meshward:${version}`;
}

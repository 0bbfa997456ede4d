// Kubernetes: the sidecar-injection transform (shared by `meshward inject` and the admission webhook), the webhook
// server, and service-account token attestation for the CA.
export { admit, type AdmissionOutcome, type AdmissionResponse, type AdmissionReviewReply } from './admission.js';
export { DEFAULT_CA_ADDRESS, DEFAULT_TRUST_DOMAIN, defaultImage } from './defaults.js';
export { isHostPort } from './host-port.js';
export { injectSidecar, type InjectOptions, type InjectResult } from './inject.js';
export { type IssuerFetchOptions, type KeySource } from './jwks-source.js';
export { isObject, ManifestError, type JsonObject, type ManifestPath } from './manifest.js';
export { SaTokenAttestor, type Attestation, type SaTokenAttestorOptions } from './sa-token-attestor.js';
export { type WorkloadIdentity } from './sa-token-claims.js';
export { ANNOTATIONS, CA_TOKEN_AUDIENCE, PORTS, SIDECAR_CONTAINER } from './sidecar-layout.js';
export { startWebhookServer, type WebhookServer, type WebhookServerOptions, type WebhookTls } from './webhook-server.js';

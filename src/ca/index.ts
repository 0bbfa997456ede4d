// The built-in certificate authority: its public face for the CLI, the sidecar's identity source and tests.
export { Authority, type Caller, type IssuedSvid, type SignContext, type SvidRequest, type WorkloadAttestor } from './authority.js';
export { startCaAdmin, type CaAdmin } from './ca-admin.js';
export { CA_FILES, advanceCa, describeState, initCa, loadCa, readState, readTokenMinting, rotateCa, type CaMaterial } from './ca-directory.js';
export { CaError } from './ca-error.js';
export { createCaMetrics, type CaMetrics } from './ca-metrics.js';
export { CaClient, leafSummary, type CaClientOptions } from './client.js';
export { checkCsr, CsrError, MAX_CSR_BYTES } from './csr-check.js';
export { makeCsr } from './csr-make.js';
export { CA_SERVER_PATH, startCaServer, type RunningCaServer, type ServingSvid } from './grpc-server.js';
export { mintJoinToken } from './join-tokens.js';
export { generateCaKey, PASSPHRASE_ENV } from './keys.js';
export type { AuditMethod, SignOutcome } from './sign-outcome.js';
export { defaultSigningWorkers } from './signing-pool.js';
export { svidValidity } from './svid-profile.js';
export { SvidSigner } from './svid-signer.js';

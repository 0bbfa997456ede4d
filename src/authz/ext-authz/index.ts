// The ext_authz server and client: their public face.
import type { ExtAuthzServer, ExtAuthzServerOptions } from './server.js';
import type { ExtAuthzClient, ExtAuthzClientOptions } from './client.js';

export type { ExtAuthzServer, ExtAuthzServerOptions, ExtAuthzStats } from './server.js';
export type { ActivePolicy, PolicyLoader, PolicyReloadStats } from './policy-reloader.js';

/** Starts `meshward authz`: Envoy's Authorization/Check, Health and reflection on one gRPC listener. */
export async function startExtAuthzServer(options: ExtAuthzServerOptions): Promise<ExtAuthzServer> {
  // Loaded on first use: `meshward policy` imports this component too and has no use for gRPC.
  const server = await import('./server.js');
  return server.startExtAuthzServer(options);
}

export type { CheckExtras, ExtAuthzClient, ExtAuthzClientOptions, RemoteVerdict } from './client.js';

/** The sidecar's client for a remote ext_authz server (`extAuthz` in its config); gRPC is loaded on first use, as for the server. */
export async function createExtAuthzClient(options: ExtAuthzClientOptions): Promise<ExtAuthzClient> {
  const { ExtAuthzClient } = await import('./client.js');
  return new ExtAuthzClient(options);
}
export { PolicyReloader } from './policy-reloader.js';

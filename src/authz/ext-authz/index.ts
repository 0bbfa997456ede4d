// The ext_authz server's public face.
import type { ExtAuthzServer, ExtAuthzServerOptions } from './server.js';

export type { ExtAuthzServer, ExtAuthzServerOptions, ExtAuthzStats } from './server.js';
export type { ActivePolicy, PolicyLoader, PolicyReloadStats } from './policy-reloader.js';

/** Starts `meshward authz`: Envoy's Authorization/Check, Health and reflection on one gRPC listener. */
export async function startExtAuthzServer(options: ExtAuthzServerOptions): Promise<ExtAuthzServer> {
  // Loaded on first use: `meshward policy` imports this component too and has no use for gRPC.
  const server = await import('./server.js');
  return server.startExtAuthzServer(options);
}

// The ext_authz server and client: their public face. The server adapts the filter runtime's replies to Envoy's
// CheckResponse, so it sits above filters/; the client is loaded by the authz filter itself (client.ts), so that
// filters/ never imports this file and no module cycle runs through it.
import type { ExtAuthzServer, ExtAuthzServerOptions } from './server.js';
import type { ExtAuthzClient, ExtAuthzClientOptions } from './client.js';

export type { ExtAuthzServer, ExtAuthzServerOptions, ExtAuthzStats } from './server.js';

/** Starts `meshward authz`: Envoy's Authorization/Check, Health and reflection on one gRPC listener. */
export async function startExtAuthzServer(options: ExtAuthzServerOptions): Promise<ExtAuthzServer> {
  // Loaded on first use: `meshward policy` imports this component too and has no use for gRPC.
  const server = await import('./server.js');
  return server.startExtAuthzServer(options);
}

export type { CheckExtras, ExtAuthzClient, ExtAuthzClientOptions, RemoteVerdict } from './client.js';

/** A client for a remote ext_authz server; gRPC is loaded on first use, as for the server. */
export async function createExtAuthzClient(options: ExtAuthzClientOptions): Promise<ExtAuthzClient> {
  const { ExtAuthzClient } = await import('./client.js');
  return new ExtAuthzClient(options);
}

// `meshward extproc`: a listener's filter chain for Envoy, as its external processor (ext_proc).
import type { Logger } from '../telemetry/index.js';
import type { ExtProcServer, ExtProcServerOptions } from './server.js';

export type { ExtProcServer, ExtProcServerOptions } from './server.js';

/** Starts `meshward extproc`; gRPC and the filters are loaded on first use. */
export async function startExtProcServer(options: ExtProcServerOptions): Promise<ExtProcServer> {
  const server = await import('./server.js');
  return server.startExtProcServer(options);
}

/** `meshward extproc --check-config`: the chain's filters in order, or what is wrong. */
export async function checkExtProcConfig(configFile: string, logger: Logger): Promise<string[]> {
  const server = await import('./server.js');
  return server.checkExtProcConfig(configFile, logger);
}

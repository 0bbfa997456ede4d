// `meshward extproc`: Envoy's ExternalProcessor/Process on the lean HTTP/2 server meshward authz uses (with
// Health, reflection and the admin listener: grpc/grpc-service-host.ts), running a listener's chain
// (filters/extproc-chain.ts) on every request Envoy sends. The filters keep their own files in force (watched, and
// read again on SIGHUP); the config file itself is read at start.
import { ConfigError, FieldError, loadExtProcConfig, type ExtProcConfig } from '../config/index.js';
import { buildExtProcChain, type Chain, type ExtProcChain } from '../filters/index.js';
import { decodeRequest, DEFAULT_MAX_MESSAGE_BYTES, grpcServerOf, hostGrpcService, streamRoute, type GrpcServiceHost, type GrpcServiceListen, type StreamHandler, type TlsFiles } from '../grpc/index.js';
import type { Logger } from '../telemetry/index.js';
import { createExtProcMetrics, type ExtProcMetrics } from './metrics.js';
import type { ProcessingRequestMessage } from './messages.js';
import { ProcessStream } from './process-stream.js';
import { EXTERNAL_PROCESSOR_SERVICE, loadExtProcTypes, loadReflectedServices, PROCESS_METHOD_PATH, type ExtProcTypes } from './protos.js';

export interface ExtProcServerOptions extends GrpcServiceListen {
  configFile: string;
  /** Mutual TLS: clients must present a certificate that chains to the CA. Plain HTTP/2 when absent. */
  tls?: TlsFiles;
  logger: Logger;
}

export interface ExtProcServer extends GrpcServiceHost {
  /** The filters read their files again (what SIGHUP does); a bad file keeps the last good one. */
  reload(): Promise<void>;
}

/** Room for a message's headers and framing around the largest body a filter reads. */
const MESSAGE_HEADROOM_BYTES = 64 * 1024;

export async function startExtProcServer(options: ExtProcServerOptions): Promise<ExtProcServer> {
  const { logger, configFile } = options;
  const config = loadExtProcConfig(configFile);
  let built: ExtProcChain | undefined;
  const metrics = createExtProcMetrics(() => built?.reloadStats());
  // Undone newest first, on a failed start as on close.
  const cleanup: Array<(graceMs: number) => Promise<void> | void> = [() => metrics.shutdown()];
  const stop = async (graceMs: number) => {
    for (const step of cleanup.splice(0).reverse()) await step(graceMs);
  };
  try {
    built = await buildChain(config, configFile, logger, metrics);
    const { chain } = built;
    cleanup.push(() => built!.close());
    const maxMessageBytes = Math.max(DEFAULT_MAX_MESSAGE_BYTES, largestBodyRead(chain, config) + MESSAGE_HEADROOM_BYTES);
    const server = await grpcServerOf({ logger, maxMessageBytes, ...(options.tls ? { tls: options.tls } : {}) });
    const types = loadExtProcTypes();
    server.route(PROCESS_METHOD_PATH, streamRoute((call) => processStream(types, chain, config, logger, metrics, (bytes) => call.write(bytes)), maxMessageBytes));
    const host = await hostGrpcService({
      server,
      service: EXTERNAL_PROCESSOR_SERVICE,
      reflected: loadReflectedServices(),
      host: options.host,
      port: options.port,
      ...(options.admin ? { admin: options.admin } : {}),
      metrics: (req, res) => metrics.handle(req, res),
    });
    // Streams in flight finish before the filters close (the cleanup steps before this one).
    cleanup.push((graceMs) => host.close(graceMs));
    const { address, adminAddress } = host;
    const filters = chain.filters.map((f) => f.name);
    logger.info({ address, tls: options.tls !== undefined, filters, ...(adminAddress ? { admin: adminAddress } : {}) }, 'listening');
    return {
      address,
      ...(adminAddress ? { adminAddress } : {}),
      reload: () => built!.reload(),
      close: (graceMs) => stop(graceMs),
    };
  } catch (err) {
    await stop(0).catch(() => undefined);
    throw err;
  }
}

/**
 * `meshward extproc --check-config`: the config read and its chain built as the server would (files read, modules
 * loaded, settings checked), then closed again. Throws what is wrong; returns the chain's filters, in order.
 */
export async function checkExtProcConfig(configFile: string, logger: Logger): Promise<string[]> {
  const built = await buildChain(loadExtProcConfig(configFile), configFile, logger);
  await built.close();
  return built.chain.filters.map((f) => f.name);
}

async function buildChain(config: ExtProcConfig, configFile: string, logger: Logger, metrics?: ExtProcMetrics): Promise<ExtProcChain> {
  try {
    return await buildExtProcChain(config, logger, metrics);
  } catch (err) {
    // A filter's own file that is wrong names itself (ConfigError); a setting names its path in this file.
    throw err instanceof FieldError && !(err instanceof ConfigError) ? err.inFile(configFile) : err;
  }
}

/** The most body bytes one message carries to a filter that reads it. */
function largestBodyRead(chain: Chain, config: ExtProcConfig): number {
  const request = chain.requestBodyBytes === undefined ? 0 : Math.min(chain.requestBodyBytes, config.limits.maxBodyBytes);
  return Math.max(request, chain.responseBody?.maxBytes ?? 0);
}

function processStream(types: ExtProcTypes, chain: Chain, config: ExtProcConfig, logger: Logger, metrics: ExtProcMetrics, write: (bytes: Uint8Array) => void): StreamHandler {
  const stream = new ProcessStream({
    chain,
    maxBodyBytes: config.limits.maxBodyBytes,
    logger,
    send: (response) => write(types.ProcessingResponse.encode(response).finish()),
  });
  return {
    message: (bytes) => stream.handle(decodeRequest((b) => types.ProcessingRequest.decode(b), bytes, 'ProcessingRequest') as ProcessingRequestMessage),
    close: () => {
      const outcome = stream.outcome;
      if (outcome !== undefined) metrics.recordRequest(outcome);
    },
  };
}

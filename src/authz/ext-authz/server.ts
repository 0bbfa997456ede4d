// The ext_authz server: the policy, the Check fast path, Health and reflection on one HTTP/2 listener.
//
// Why not @grpc/grpc-js for Check: bench/authz-throughput.mjs sends Envoy-shaped Checks with h2load. A bare
// grpc-js server that answers OK with no work sets the bar; grpc-js running meshward's Check (even with
// protobufjs codecs instead of proto-loader's object conversion) stays below it, because grpc-js's per-call
// machinery (interceptors, metadata objects, stream wrappers) costs more than the decision itself. Serving
// Check on Node's http2 directly, with pre-resolved protobufjs types, clears the bar while doing the work.
// Health and reflection keep their library implementations, adapted onto the same server.
import type { AddressInfo } from 'node:net';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import type { Logger } from '../../telemetry/index.js';
import { checkHandler } from './check-handler.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../grpc/grpc-framing.js';
import { GrpcHttp2Server } from '../../grpc/grpc-http2-server.js';
import { policyEngineLoader, PolicyReloader, type PolicyLoader, type PolicyReloadStats } from './policy-reloader.js';
import { AUTHORIZATION_SERVICE, CHECK_METHOD_PATH, loadCheckTypes, loadReflectedServices } from './protos.js';
import { readTlsFiles, type TlsFiles } from './tls-files.js';
import { unaryRoute } from '../../grpc/unary-route.js';

export interface ExtAuthzServerOptions {
  policyFile: string;
  /** How the policy file becomes an engine; meshward's policy engine unless a test substitutes one. */
  loadPolicy?: PolicyLoader;
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  /** Mutual TLS: clients must present a certificate that chains to the CA. Plain HTTP/2 when absent. */
  tls?: TlsFiles;
  logger: Logger;
  maxMessageBytes?: number;
}

export interface ExtAuthzStats {
  policy: PolicyReloadStats;
}

export interface ExtAuthzServer {
  /** host:port as bound, `[v6]:port` for IPv6. */
  readonly address: string;
  /** Reloads the policy file (what SIGHUP does). */
  reloadPolicy(): Promise<void>;
  stats(): ExtAuthzStats;
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

export async function startExtAuthzServer(options: ExtAuthzServerOptions): Promise<ExtAuthzServer> {
  const { logger } = options;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const policy = await PolicyReloader.start(options.policyFile, options.loadPolicy ?? policyEngineLoader(logger), logger);
  try {
    const tls = options.tls ? await readTlsFiles(options.tls) : undefined;
    const server = createServer(logger, maxMessageBytes, tls);
    server.route(CHECK_METHOD_PATH, unaryRoute(checkHandler(loadCheckTypes(), () => policy.current, logger), maxMessageBytes));
    const health = new HealthImplementation({ '': 'SERVING', [AUTHORIZATION_SERVICE]: 'SERVING' });
    health.addToServer(server);
    new ReflectionService(loadReflectedServices()).addToServer(server);

    const address = formatAddress(await server.listen(options.host, options.port));
    logger.info({ address, tls: tls !== undefined }, 'listening');
    return {
      address,
      reloadPolicy: () => policy.reload('SIGHUP'),
      stats: () => ({ policy: policy.stats() }),
      close: async (graceMs) => {
        policy.close();
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(AUTHORIZATION_SERVICE, 'NOT_SERVING');
        await server.close(graceMs);
      },
    };
  } catch (err) {
    policy.close();
    throw err;
  }
}

function createServer(logger: Logger, maxMessageBytes: number, tls: Awaited<ReturnType<typeof readTlsFiles>> | undefined): GrpcHttp2Server {
  try {
    return new GrpcHttp2Server({ logger, maxMessageBytes, ...(tls ? { tls } : {}) });
  } catch (err) {
    // OpenSSL's own words (a key that does not match, a PEM that does not parse), with what it was about.
    throw new Error(`TLS configuration refused: ${(err as Error).message}`);
  }
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

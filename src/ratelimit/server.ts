// `meshward ratelimit`: Envoy's RateLimitService/ShouldRateLimit on the lean HTTP/2 server ext_authz uses (with
// Health, reflection and the admin listener: grpc/grpc-service-host.ts), the config kept in force by a
// FileReloader, counts in Redis or in memory.
import type { Logger } from 'pino';
import { FileReloader } from '../config/index.js';
import { DEFAULT_MAX_MESSAGE_BYTES, GrpcHttp2Server, hostGrpcService, unaryRoute, type GrpcServiceHost, type GrpcServiceListen } from '../grpc/index.js';
import type { FailureMode } from './counter-store.js';
import { createRateLimitServerMetrics } from './metrics.js';
import { openCounterStore, type StoreSettings } from './open-store.js';
import { loadReflectedServices, loadRateLimitTypes, RATE_LIMIT_SERVICE, SHOULD_RATE_LIMIT_PATH } from './protos.js';
import { RateLimitConfig } from './rate-limit-config.js';
import { shouldRateLimitHandler } from './should-rate-limit.js';

export interface RateLimitServerOptions extends GrpcServiceListen {
  configFile: string;
  store: StoreSettings;
  failureMode: FailureMode;
  logger: Logger;
}

export interface RateLimitServer extends GrpcServiceHost {
  /** Reloads the config file (what SIGHUP does). */
  reloadConfig(): Promise<void>;
}

export async function startRateLimitServer(options: RateLimitServerOptions): Promise<RateLimitServer> {
  const { logger, failureMode } = options;
  const config = await FileReloader.start(options.configFile, (file) => RateLimitConfig.load(file), logger, { what: 'rate-limit config' });
  // Undone newest first, on a failed start as on close.
  const cleanup: Array<(graceMs: number) => Promise<void> | void> = [() => config.close()];
  const stop = async (graceMs: number) => {
    for (const step of cleanup.splice(0).reverse()) await step(graceMs);
  };
  try {
    const metrics = createRateLimitServerMetrics(() => config.stats());
    cleanup.push(() => metrics.shutdown());
    const store = await openCounterStore(options.store, { logger, onError: metrics.recordStoreError });
    cleanup.push(() => store.close());

    const server = new GrpcHttp2Server({ logger, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
    const handler = shouldRateLimitHandler(loadRateLimitTypes(), {
      current: () => ({ config: config.current, store, failureMode }),
      logger,
      observe: (verdict) => {
        metrics.recordAnswer(verdict.overallCode);
        if (verdict.shadowed > 0) metrics.recordShadowed(verdict.shadowed);
      },
    });
    server.route(SHOULD_RATE_LIMIT_PATH, unaryRoute(handler, DEFAULT_MAX_MESSAGE_BYTES));
    const host = await hostGrpcService({
      server,
      service: RATE_LIMIT_SERVICE,
      reflected: loadReflectedServices(),
      host: options.host,
      port: options.port,
      ...(options.admin ? { admin: options.admin } : {}),
      metrics: (req, res) => metrics.handle(req, res),
    });
    cleanup.push((graceMs) => host.close(graceMs));
    const { address, adminAddress } = host;
    logger.info(
      { address, store: store.description, failureMode, domains: config.current.domainNames, ...(adminAddress ? { admin: adminAddress } : {}) },
      'listening',
    );
    return {
      address,
      ...(adminAddress ? { adminAddress } : {}),
      reloadConfig: () => config.reload('SIGHUP'),
      close: (graceMs) => stop(graceMs),
    };
  } catch (err) {
    await stop(0).catch(() => undefined);
    throw err;
  }
}


// The ext_authz server: the policy, the Check fast path, Health and reflection on one HTTP/2 listener.
//
// Why not @grpc/grpc-js for Check: bench/authz-throughput.mjs sends Envoy-shaped Checks with h2load. A bare
// grpc-js server that answers OK with no work sets the bar; grpc-js running meshward's Check (even with
// protobufjs codecs instead of proto-loader's object conversion) stays below it, because grpc-js's per-call
// machinery (interceptors, metadata objects, stream wrappers) costs more than the decision itself. Serving
// Check on Node's http2 directly, with pre-resolved protobufjs types, clears the bar while doing the work.
// Health and reflection keep their library implementations, adapted onto the same server.
//
// Beside it, optionally: the admin listener (/healthz, /readyz, /metrics) and the audit log, as the sidecar has
// them (check-observer.ts: what each answered Check records).
import { AFTER_ANSWER_WRITES, AuditLog, logAuditRotation, type Logger } from '../../telemetry/index.js';
import { checkHandler } from './check-handler.js';
import { observeChecks } from './check-observer.js';
import { createAuthzServerMetrics } from './metrics.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../grpc/grpc-framing.js';
import { policyChainLoader } from '../../filters/authz/policy-chain.js';
import { PolicyReloader, type PolicyLoader, type PolicyReloadStats } from '../policy-reloader.js';
import { AUTHORIZATION_SERVICE, CHECK_METHOD_PATH, loadCheckTypes, loadReflectedServices } from './protos.js';
import { grpcServerOf, type TlsFiles } from '../../grpc/server-tls.js';
import { unaryRoute } from '../../grpc/unary-route.js';
import { hostGrpcService, type GrpcServiceHost, type GrpcServiceListen } from '../../grpc/grpc-service-host.js';

export interface ExtAuthzServerOptions extends GrpcServiceListen {
  policyFile: string;
  /** How the policy file becomes an engine; the whole policy file (filters/authz/policy-chain.ts) unless a test substitutes one. */
  loadPolicy?: PolicyLoader;
  /** Mutual TLS: clients must present a certificate that chains to the CA. Plain HTTP/2 when absent. */
  tls?: TlsFiles;
  logger: Logger;
  maxMessageBytes?: number;
  /** The audit log: one hash-chained record per Check answered. None when absent. */
  audit?: { path: string };
}

export interface ExtAuthzStats {
  policy: PolicyReloadStats;
}

export interface ExtAuthzServer extends GrpcServiceHost {
  /** Reloads the policy file (what SIGHUP does). */
  reloadPolicy(): Promise<void>;
  stats(): ExtAuthzStats;
}

export async function startExtAuthzServer(options: ExtAuthzServerOptions): Promise<ExtAuthzServer> {
  const { logger } = options;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const policy = await PolicyReloader.start(options.policyFile, options.loadPolicy ?? policyChainLoader(logger), logger);
  // Undone newest first, on a failed start as on close.
  const cleanup: Array<(graceMs: number) => Promise<void> | void> = [() => policy.close()];
  const stop = async (graceMs: number) => {
    for (const step of cleanup.splice(0).reverse()) await step(graceMs);
  };
  try {
    const server = await grpcServerOf({ logger, maxMessageBytes, ...(options.tls ? { tls: options.tls } : {}) });
    const metrics = createAuthzServerMetrics(() => policy.stats());
    cleanup.push(() => metrics.shutdown());
    const auditPath = options.audit?.path;
    const audit = auditPath === undefined ? undefined : await openAuditLog(auditPath, logger);
    const checks = observeChecks(metrics, audit, logger);
    cleanup.push(async () => {
      await checks.close();
      // The newest record's hash, kept outside the file: what makes a truncated log detectable (audit-chain.ts).
      if (audit) logger.info({ file: auditPath, head: audit.headHash }, 'audit log closed');
    });

    const handler = checkHandler(loadCheckTypes(), { currentPolicy: () => policy.current, logger, observe: checks.observe });
    server.route(CHECK_METHOD_PATH, unaryRoute(handler, maxMessageBytes));
    const host = await hostGrpcService({
      server,
      service: AUTHORIZATION_SERVICE,
      reflected: loadReflectedServices(),
      host: options.host,
      port: options.port,
      ...(options.admin ? { admin: options.admin } : {}),
      metrics: (req, res) => metrics.handle(req, res),
    });
    // Calls in flight finish before the audit log closes (the cleanup steps after this one).
    cleanup.push((graceMs) => host.close(graceMs));
    const { address, adminAddress } = host;
    logger.info({ address, tls: options.tls !== undefined, ...(adminAddress ? { admin: adminAddress } : {}), ...(auditPath === undefined ? {} : { audit: auditPath }) }, 'listening');
    return {
      address,
      ...(adminAddress ? { adminAddress } : {}),
      reloadPolicy: () => policy.reload('SIGHUP'),
      stats: () => ({ policy: policy.stats() }),
      close: (graceMs) => stop(graceMs),
    };
  } catch (err) {
    await stop(0).catch(() => undefined);
    throw err;
  }
}

async function openAuditLog(path: string, logger: Logger): Promise<AuditLog> {
  try {
    return await AuditLog.open({
      path,
      onRotate: logAuditRotation(logger),
      // Records are written after the answer (check-observer.ts): they may wait a few ms to share a write.
      ...AFTER_ANSWER_WRITES,
      onWriteError: (err, records) => logger.error({ err: err.message, records }, 'audit log append failed'),
    });
  } catch (err) {
    // A damaged log names itself; a system error (a missing directory, no permission) is said with the path.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new Error(`${path}: cannot open the audit log: ${code === 'ENOENT' ? 'no such directory' : code}`);
  }
}

import type { AddressInfo } from 'node:net';
import type { Tracer } from '@opentelemetry/api';
import { FieldError, fileProblem, formatHostPort, formatPath, inboundEntries, type InboundConfig, type InboundEntry, type Limits, type SidecarConfig } from '../config/index.js';
import { buildInboundChain, buildOutboundChains, PolicyFiles, sumReloads, type FilterEnvironment, type FilterSet } from '../filters/index.js';
import type { IdentitySnapshot } from '../identity/index.js';
import { AFTER_ANSWER_WRITES, AuditLog, createSidecarMetrics, logAuditRotation, startTracing, tracingSettingsFromEnv, type Logger, type SidecarMetrics } from '../telemetry/index.js';
import { AdminServer } from '../telemetry/admin-server.js';
import type { HopRecord } from './hop-record.js';
import { hopObserver } from './hop-observer.js';
import { prepareIdentitySource } from './identity-source.js';
import { reportCutOffs } from './http2-cutoff-report.js';
import { InboundHttpListener } from './inbound-http.js';
import { InboundTcpListener } from './inbound-tcp.js';
import { prepareIngress } from './ingress-start.js';
import { OutboundListener } from './outbound-listener.js';
import { OutboundRouteTable } from './outbound-routes.js';
import { routesWithoutIdentity } from './routes-without-identity.js';
import { descriptorUse, servingProblem, type ListenerLoad } from './serving-health.js';
import { secureContextOptions, type TlsVersion } from './tls-options.js';
import { warmUp } from './warm-up.js';
import { Http1Upstream } from './upstream-http1.js';
import { Http2Upstream } from './upstream-http2.js';
import type { Upstream } from './upstream.js';

// `meshward sidecar`: an identity source, the inbound listeners (mTLS → filter chain → app; one per app port), the
// outbound listener (app → route → mTLS), the ingress listener (TLS clients outside the mesh → filter chain → an
// outbound route's mTLS), the identity served to local processes (SDS, Workload API), the admin
// listener and the audit log, wired together. Identity changes flow one way: the source publishes a snapshot, and
// every TLS context and outbound pool is rebuilt from it (and every SDS and Workload API stream is sent it).

export interface SidecarAddresses {
  /** The first inbound listener's address (the only one's, in most configs). */
  inbound?: string;
  /** Every inbound listener's address, in the config's order. */
  inbounds?: string[];
  outbound?: string;
  ingress?: string;
  sds?: string;
  workloadApi?: string;
  admin: string;
}

export interface Sidecar {
  readonly addresses: SidecarAddresses;
  reloadPolicy(): Promise<void>;
  /** Drains (stops accepting, finishes requests in flight for up to the drain timeout) and stops. */
  close(): Promise<void>;
}

/**
 * `env` holds the OTEL_* variables that turn tracing on (telemetry/tracing.ts). Errors about one field of the
 * config (a file that is not what it should be, a port already taken) are FieldErrors naming it.
 */
export async function startSidecar(config: SidecarConfig, logger: Logger, env: Record<string, string | undefined> = process.env): Promise<Sidecar> {
  const tracingSettings = tracingSettingsFromEnv(env);
  // Listeners drain together first; then everything else stops, newest first.
  const drains: Array<() => Promise<void>> = [];
  const cleanup: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    await Promise.all(drains.map((drain) => drain()));
    for (const step of cleanup.reverse()) await step();
  };
  try {
    // Getting the identity may spend a one-time join token, so everything that can fail for a reason an operator
    // must fix (files, the policy, the audit log, every listener's port) is done first: a failed start leaves the
    // token unspent. The admin listener is up before the identity, so /readyz says "not ready" while the CA is
    // awaited. The data-plane listeners hold their ports but carry nothing until there is an identity: inbound has
    // no certificate to offer, so every handshake fails; outbound answers a routed host with 503 (try again).
    const startIdentity = await prepareIdentitySource(config, logger);
    let snapshot: IdentitySnapshot | undefined;
    let failedRotations = () => 0;

    const auditConfig = config.audit;
    const audit = auditConfig
      ? await AuditLog.open({
          path: auditConfig.path,
          maxBytes: auditConfig.maxFileBytes,
          ...(auditConfig.keepFiles !== undefined ? { keepFiles: auditConfig.keepFiles } : {}),
          onRotate: logAuditRotation(logger),
          // Records are written after the answer: they may wait a few ms to share a write, and the disk a little longer.
          ...AFTER_ANSWER_WRITES,
          onWriteError: (err, records) => logger.error({ err: err.message, records }, 'audit log append failed'),
        }).catch((err: unknown) => {
          throw new FieldError(['audit', 'path'], `${auditConfig.path} cannot be opened for writing: ${fileProblem(err)}`);
        })
      : undefined;
    if (audit) {
      cleanup.push(async () => {
        await audit.close();
        // The newest record's hash, kept outside the file: what makes a truncated log detectable (audit-chain.ts).
        logger.info({ file: auditConfig!.path, head: audit.headHash }, 'audit log closed');
      });
    }
    /** Every listener's filters: SIGHUP reloads them, the metrics count their policy reloads. */
    const filterSets: FilterSet[] = [];
    // A policy file named by several inbound listeners is loaded, watched and reloaded once.
    const policies = new PolicyFiles(logger);
    cleanup.push(() => policies.close());
    const metrics = createSidecarMetrics({
      svidNotAfter: () => snapshot?.svid.notAfter,
      svidRotationFailures: () => failedRotations(),
      policyReloads: () => sumReloads([policies.stats(), ...filterSets.map((set) => set.reloadStats())]),
    });
    const filterEnv = (listener: FilterEnvironment['listener'], tls: boolean): FilterEnvironment => ({ configDir: config.configDir ?? process.cwd(), logger, listener, tls, metrics, policies });
    cleanup.push(() => metrics.shutdown());
    const observe = hopObserver(audit, metrics, logger);
    const tracing = tracingSettings ? await startTracing(tracingSettings, 'meshward-sidecar') : undefined;
    if (tracing) {
      cleanup.push(() => tracing.shutdown());
      logger.info({ protocol: tracingSettings!.protocol, endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing on: spans exported by OTLP');
    }
    const tracer = tracing?.tracer;

    let draining = false;
    let warming = false;
    const addresses: SidecarAddresses = { admin: '' };
    /** Called with the first identity and every change after it. */
    const updaters: Array<(s: IdentitySnapshot) => void> = [];
    const loads: ListenerLoad[] = [];

    const notReadyReason = () => {
      if (draining) return 'draining';
      if (warming) return 'warming up';
      if (snapshot === undefined || snapshot.svid.notAfter.getTime() <= Date.now()) return 'no SVID in date';
      return servingProblem(loads, descriptorUse());
    };
    const admin = new AdminServer(config.admin.listen.host, config.admin.listen.port, {
      ready: () => notReadyReason() === undefined,
      notReadyReason,
      metrics: (req, res) => metrics.handle(req, res),
      views: { '/certs': () => certsView(snapshot), '/config': () => config },
    });
    addresses.admin = await listenAt(admin, ['admin', 'listen']);
    // The admin listener stops last, so that /readyz answers "not ready" while the data plane drains.
    cleanup.unshift(() => admin.close());

    const inbound: InboundShared = {
      trustDomain: config.trustDomain,
      observe,
      logger,
      metrics,
      env: filterEnv('inbound', true),
      ownId: () => snapshot!.svid.spiffeId,
      ...(tracer ? { tracer } : {}),
    };
    for (const entry of inboundEntries(config.inbound)) {
      const listener = await startInbound(entry, inbound, cleanup);
      filterSets.push(listener.filters);
      (addresses.inbounds ??= []).push(listener.address);
      loads.push(listener.load);
      drains.push(() => listener.close(config.drainTimeout));
      updaters.push(listener.updateTls);
    }
    if (addresses.inbounds) addresses.inbound = addresses.inbounds[0];
    // The outbound routes' mTLS pools, once there is an identity: the outbound and ingress listeners send through them.
    let routes: OutboundRouteTable | undefined;
    const waiting = routesWithoutIdentity(config.outbound?.routes ?? []);
    if (config.outbound) {
      const outbound = config.outbound;
      cleanup.push(() => routes?.destroy());
      const { headerChecks, chainFor, ...filters } = await buildOutboundChains(outbound, filterEnv('outbound', false));
      filterSets.push(filters);
      cleanup.push(() => filters.close());
      const listener = new OutboundListener({
        host: outbound.listen.host,
        port: outbound.listen.port,
        limits: outbound.limits,
        headerChecks,
        chainFor,
        routes: { upstreamFor: (...args) => (routes ?? waiting).upstreamFor(...args) },
        observe,
        guardEvents: reportCutOffs('outbound', logger, metrics),
        logger,
        ...(tracer ? { tracer } : {}),
      });
      addresses.outbound = await listenAt(listener, ['outbound', 'listen']);
      loads.push({ name: 'outbound', open: listener.openConnections, maxConnections: outbound.limits.maxConnections });
      drains.push(() => listener.close(config.drainTimeout));
      updaters.push((s) => {
        if (routes) routes.update(s);
        else routes = new OutboundRouteTable(outbound.routes, config.trustDomain, outbound.minTlsVersion, outbound.limits, s, logger);
      });
    }
    if (config.ingress) {
      const shared = { env: filterEnv('ingress', true), observe, logger, metrics, ...(tracer ? { tracer } : {}) };
      const { listener, filters } = await prepareIngress(config.ingress, shared, { upstreamOf: (...args) => (routes ?? waiting).upstreamOf(...args) }, cleanup);
      filterSets.push(filters);
      addresses.ingress = await listenAt(listener, ['ingress', 'listen']);
      loads.push({ name: 'ingress', open: listener.openConnections, maxConnections: config.ingress.limits.maxConnections });
      drains.push(() => listener.close(config.drainTimeout));
    }
    if (config.sds || config.workloadApi) {
      // gRPC is loaded only by a sidecar that serves its identity to other processes.
      const served = await (await import('../identity-api/index.js')).serveIdentity(config, logger);
      Object.assign(addresses, served.addresses);
      cleanup.push(() => served.close());
      updaters.push((s) => served.update(s));
    }

    logger.info(addresses, 'listening; not ready until the identity is held');
    const source = await startIdentity();
    cleanup.push(() => source.close());
    failedRotations = () => source.failedUpdates();
    const apply = (next: IdentitySnapshot) => {
      snapshot = next;
      for (const update of updaters) update(next);
    };
    apply(source.current()!);
    const unsubscribe = source.onChange((next) => {
      apply(next);
      metrics.recordSvidRotation();
      logger.info({ spiffeId: next.svid.spiffeId, serial: next.svid.serial, notAfter: next.svid.notAfter.toISOString() }, 'identity rotated; new connections use it');
    });
    cleanup.push(unsubscribe);

    const warmUpWith = warmUpListenerSettings(config);
    if (warmUpWith !== undefined && config.warmUp.requests > 0) {
      warming = true;
      await warmUp(snapshot!, config.trustDomain, warmUpWith.limits, warmUpWith.minTlsVersion, { requests: config.warmUp.requests, deadlineMs: config.warmUp.deadline }, logger).then(
        (r) => logger.info({ requests: r.sent, failed: r.failed, ms: Math.round(r.ms) }, 'warmed up'),
        // Warm-up only makes the first requests faster: a sidecar that cannot warm up still serves.
        (err: unknown) => logger.warn({ err: (err as Error).message }, 'warm-up failed; serving cold'),
      );
      warming = false;
    }
    logger.info(addresses, 'sidecar ready');
    return {
      addresses,
      reloadPolicy: async () => {
        await Promise.all([policies.reload(), ...filterSets.map((set) => set.reload())]);
      },
      close: async () => {
        draining = true;
        await stop();
      },
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Binds a listener; a port that cannot be had is an error about the config field that names it. */
async function listenAt(listener: { listen(): Promise<AddressInfo> }, field: ReadonlyArray<string | number>): Promise<string> {
  try {
    return formatAddress(await listener.listen());
  } catch (err) {
    throw new FieldError(field, (err as Error).message);
  }
}

interface InboundShared {
  trustDomain: string;
  observe: (record: HopRecord) => void;
  logger: Logger;
  metrics: SidecarMetrics;
  /** What the inbound chains' filters are built with. */
  env: FilterEnvironment;
  tracer?: Tracer;
  /** The sidecar's own SPIFFE ID, once it has an identity. */
  ownId: () => string;
}

interface StartedInbound {
  address: string;
  load: ListenerLoad;
  filters: FilterSet;
  close(drainTimeoutMs: number): Promise<void>;
  updateTls(snapshot: IdentitySnapshot): void;
}

/**
 * One inbound listener (mTLS → filter chain → its app), bound to its port. What it holds is put on `cleanup` as soon
 * as it is held, so that a later failure releases it. Errors name the entry (`inbound[1].listen: ...`).
 */
async function startInbound({ inbound, path }: InboundEntry, shared: InboundShared, cleanup: Array<() => Promise<void> | void>): Promise<StartedInbound> {
  const { logger, metrics, tracer } = shared;
  const { chain, ...filters } = await buildInboundChain(inbound, shared.env, path);
  cleanup.push(() => filters.close());
  // No certificate until the identity arrives (updateTls below): until then every handshake fails.
  const tls = { minVersion: inbound.minTlsVersion, handshakeTimeout: inbound.limits.handshakeTimeout };
  const common = { host: inbound.listen.host, port: inbound.listen.port, tls, trustDomain: shared.trustDomain, limits: inbound.limits, chain, observe: shared.observe, logger, ...(tracer ? { tracer } : {}) };
  let listener: InboundHttpListener | InboundTcpListener;
  if (inbound.app.protocol === 'tcp') {
    listener = new InboundTcpListener({ ...common, app: inbound.app.address });
  } else {
    const app = appUpstream(inbound);
    cleanup.push(() => app.destroy());
    listener = new InboundHttpListener({ ...common, ownId: shared.ownId, upstream: app, appIsHttp2: inbound.app.protocol === 'h2c', guardEvents: reportCutOffs('inbound', logger, metrics) });
  }
  const address = await listenAt(listener, [...path, 'listen']);
  return {
    address,
    filters,
    // Named as in the config, so that /readyz points at the limits.maxConnections that applies.
    load: { name: formatPath(path), open: listener.openConnections, maxConnections: inbound.limits.maxConnections },
    close: (drainTimeoutMs) => listener.close(drainTimeoutMs),
    updateTls: (s) => listener.updateTls(secureContextOptions(s, inbound.minTlsVersion)),
  };
}

/** The limits and TLS version the warm-up's throwaway listeners use: the first HTTP listener's; none: no warm-up. */
function warmUpListenerSettings(config: SidecarConfig): { limits: Limits; minTlsVersion: TlsVersion } | undefined {
  const http = inboundEntries(config.inbound).find(({ inbound }) => inbound.app.protocol !== 'tcp')?.inbound ?? config.outbound;
  return http === undefined ? undefined : { limits: http.limits, minTlsVersion: http.minTlsVersion };
}

function appUpstream(inbound: InboundConfig): Upstream {
  const { address, protocol } = inbound.app;
  const target = formatHostPort(address);
  const { requestTimeout, idleTimeout } = inbound.limits;
  return protocol === 'h2c'
    ? new Http2Upstream({ address: target, headersTimeoutMs: requestTimeout })
    : new Http1Upstream({ address: target, headersTimeoutMs: requestTimeout, bodyTimeoutMs: idleTimeout, keepAliveTimeoutMs: idleTimeout });
}

function certsView(current: IdentitySnapshot | undefined) {
  if (current === undefined) return { loaded: false };
  const { svid } = current;
  return {
    loaded: true,
    spiffeId: svid.spiffeId,
    serial: svid.serial,
    notBefore: svid.notBefore.toISOString(),
    notAfter: svid.notAfter.toISOString(),
    secondsToExpiry: Math.max(0, Math.floor((svid.notAfter.getTime() - Date.now()) / 1000)),
    bundleRoots: (current.bundlePem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length,
  };
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

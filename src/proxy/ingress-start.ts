import type { Tracer } from '@opentelemetry/api';
import { FieldError, type IngressConfig } from '../config/index.js';
import { buildIngressChains, type FilterEnvironment, type FilterSet } from '../filters/index.js';
import { watchServerCertificate, type ServerCertificate } from '../identity/index.js';
import type { Logger, SidecarMetrics } from '../telemetry/index.js';
import type { HopObserver } from './hop-record.js';
import { reportCutOffs } from './http2-cutoff-report.js';
import { IngressListener } from './ingress-listener.js';
import type { OutboundRoutes } from './outbound-listener.js';

// The ingress listener as `meshward sidecar` builds it from `ingress:`: its chains, its certificate (watched: a new
// pair is used by new handshakes at once), its routes. Not bound yet: the sidecar binds every listener, then asks for
// its identity.

export interface IngressShared {
  env: FilterEnvironment;
  observe: HopObserver;
  logger: Logger;
  metrics: SidecarMetrics;
  tracer?: Tracer;
}

/** What it holds is put on `cleanup` as soon as it is held, so that a later failure releases it. */
export async function prepareIngress(
  ingress: IngressConfig,
  shared: IngressShared,
  routes: Pick<OutboundRoutes, 'upstreamOf'>,
  cleanup: Array<() => Promise<void> | void>,
): Promise<{ listener: IngressListener; filters: FilterSet }> {
  const { logger } = shared;
  const { headerChecks, routeChains, ...filters } = await buildIngressChains(ingress, shared.env);
  cleanup.push(() => filters.close());
  const { cert, key, minVersion } = ingress.tls;
  const tlsOf = (certificate: ServerCertificate) => ({ cert: certificate.certPem, key: certificate.keyPem, minVersion });
  // Until the listener exists there is nothing to update: it starts with the certificate current then.
  let update = (_next: ServerCertificate): void => undefined;
  const certificate = await watchServerCertificate({ cert, key }, logger, (next) => update(next)).catch((err: unknown) => {
    throw new FieldError(['ingress', 'tls'], (err as Error).message);
  });
  cleanup.push(() => certificate.close());
  const listener = new IngressListener({
    host: ingress.listen.host,
    port: ingress.listen.port,
    tls: { ...tlsOf(certificate.current), handshakeTimeout: ingress.limits.handshakeTimeout },
    limits: ingress.limits,
    headerChecks,
    routes: ingress.routes.map((route, i) => {
      const chain = routeChains[i]!;
      return {
        prefix: route.prefix,
        methods: route.methods === undefined ? undefined : new Set(route.methods),
        answersPreflights: chain.filters.some((filter) => filter.name === 'cors'),
        to: route.to,
        chain,
      };
    }),
    upstreamOf: (...args) => routes.upstreamOf(...args),
    observe: shared.observe,
    guardEvents: reportCutOffs('ingress', logger, shared.metrics),
    logger,
    ...(shared.tracer ? { tracer: shared.tracer } : {}),
  });
  update = (next) => listener.updateTls(tlsOf(next));
  return { listener, filters };
}

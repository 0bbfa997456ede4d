import { X509Certificate } from 'node:crypto';
import { AdminServer } from '../telemetry/admin-server.js';
import type { Authority } from './authority.js';
import type { CaMetrics } from './ca-metrics.js';
import type { RunningCaServer } from './grpc-server.js';

// The serving CA's admin listener (telemetry/admin-server.ts): /healthz, /readyz, /metrics and /certs, a view of
// the CA's certificates an operator can read without the CA directory. Certificates only: no key, no token secret.
// It starts before the gRPC listener, so that /readyz answers 503 while the CA is still coming up.

export interface CaAdmin {
  address: string;
  close(): Promise<void>;
}

export async function startCaAdmin(opts: {
  host: string;
  port: number;
  authority: Authority;
  metrics: CaMetrics;
  /** The gRPC server once it listens; undefined before. */
  server: () => RunningCaServer | undefined;
}): Promise<CaAdmin> {
  const admin = new AdminServer(opts.host, opts.port, {
    ready: () => opts.server()?.ready() ?? false,
    metrics: (req, res) => opts.metrics.handle(req, res),
    views: { '/certs': () => caCertsView(opts.authority, opts.server()) },
  });
  const bound = await admin.listen();
  return { address: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`, close: () => admin.close() };
}

/** The trust bundle, the signing certificate, the rotation stage and the serving SVID, for /certs. */
export function caCertsView(authority: Authority, server: RunningCaServer | undefined) {
  const now = Date.now();
  const summary = (cert: X509Certificate) => {
    const notAfter = new Date(cert.validTo);
    return { serial: cert.serialNumber, subject: cert.subject, notBefore: new Date(cert.validFrom).toISOString(), notAfter: notAfter.toISOString(), secondsToExpiry: secondsFrom(now, notAfter) };
  };
  const { rotation, imported } = authority.state;
  const serving = server?.serving();
  return {
    trustDomain: authority.trustDomain,
    bundle: authority.bundle.map((pem) => summary(new X509Certificate(pem))),
    signing: { ...summary(new X509Certificate(authority.signingCertificate)), imported: imported ?? false },
    rotation:
      rotation === undefined
        ? { stage: 'none' }
        : rotation.stage === 'propagating'
          ? { stage: rotation.stage, startedAt: rotation.startedAt, activateAt: rotation.activateAt }
          : { stage: rotation.stage, activatedAt: rotation.activatedAt, retireAt: rotation.retireAt, retiringRoots: rotation.retiringRoots.map((pem) => new X509Certificate(pem).serialNumber) },
    serving: serving ? { spiffeId: serving.spiffeId, serial: serving.serial, notAfter: serving.notAfter.toISOString(), secondsToExpiry: secondsFrom(now, serving.notAfter) } : null,
    maxSvidTtlSeconds: authority.maxSvidTtlSeconds,
    auditLog: authority.auditPath,
  };
}

function secondsFrom(now: number, date: Date): number {
  return Math.max(0, Math.floor((date.getTime() - now) / 1000));
}

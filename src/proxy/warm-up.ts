import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Limits } from '../config/index.js';
import { chainOf, loadPolicyChainFromText, registry, type FilterEnvironment } from '../filters/index.js';
import { policyAuthorization } from '../filters/authz/policy-authorization.js';
import type { IdentitySnapshot } from '../identity/index.js';
import { AFTER_ANSWER_WRITES, AuditLog, createSidecarMetrics, type Logger } from '../telemetry/index.js';
import { hopObserver } from './hop-observer.js';
import type { GuardEvents } from './http2-session-guard.js';
import { InboundHttpListener } from './inbound-http.js';
import { OutboundListener } from './outbound-listener.js';
import { OutboundRouteTable } from './outbound-routes.js';
import { secureContextOptions, type TlsVersion } from './tls-options.js';
import { Http1Upstream } from './upstream-http1.js';
import { sendWarmUpRequests, startWarmUpApp, type WarmUpResult } from './warm-up-traffic.js';

// A sidecar's first seconds: V8 runs its code unoptimised until it has seen it run, and start-up leaves garbage for
// the first collections. Measured at 1,000 requests/s, the first second after /readyz said ready had a p90 of
// hundreds of ms (bench/README.md, "cold start"). So before it says ready, the sidecar sends requests through a
// throwaway outbound listener, over mTLS with its own SVID, into a throwaway inbound listener and on to a throwaway
// app, all on loopback: the same classes and functions real requests run, so their optimised code is what the real
// listeners run. The throwaway chain holds only stateless filters (header checks, limits, peer authentication) and
// a throwaway policy that allows the sidecar's own SPIFFE ID; both listeners report to a throwaway audit log (in a
// temp directory, removed after) and throwaway metrics. So the policy engine, the audit record and the metrics are
// compiled and optimised before ready, not under the first seconds of real load: in four pairs of cold runs the
// second second's p90 was 3-9 ms with them in the warm-up and 6-20 ms without (bench/README.md, "cold start").
// Warm-up requests never reach the real policy, a rate limit, ext_authz, the app, the real audit log or the real
// metrics.

const WARM_UP_HOST = 'warm-up.meshward.invalid';
const CONNECTIONS = 8;
/**
 * Rounds of new outbound pools (CONNECTIONS new mTLS connections each). A cold window's first 200 ms are new
 * connections (bench/README.md, "cold start"): in two pairs of runs, the first second's p90 was 31 and 13 ms
 * with six rounds against 55 and 56 with one.
 */
const POOL_ROUNDS = 6;
const IGNORE_GUARD: GuardEvents = { peerCutOff: () => undefined, connectionCutOff: () => undefined };

export interface WarmUpSettings {
  requests: number;
  deadlineMs: number;
}

export async function warmUp(snapshot: IdentitySnapshot, trustDomain: string, limits: Limits, minTlsVersion: TlsVersion, settings: WarmUpSettings, logger: Logger): Promise<WarmUpResult> {
  const stops: Array<() => Promise<void> | void> = [];
  try {
    const app = await startWarmUpApp();
    stops.push(() => app.close());
    const auditDir = await mkdtemp(join(tmpdir(), 'meshward-warm-up-'));
    stops.push(() => rm(auditDir, { recursive: true, force: true }));
    const audit = await AuditLog.open({ path: join(auditDir, 'audit.jsonl'), ...AFTER_ANSWER_WRITES });
    stops.push(() => audit.close());
    const metrics = createSidecarMetrics({ svidNotAfter: () => snapshot.svid.notAfter, svidRotationFailures: () => 0, policyReloads: () => undefined });
    stops.push(() => metrics.shutdown());
    // Only refusals and failures are logged at info, and a warm-up request refused is a warm-up that failed (counted).
    const observe = hopObserver(audit, metrics, logger.child({ warmUp: true }, { level: 'warn' }));
    const policy = loadPolicyChainFromText(`defaultAction: deny\nrules:\n  - name: warm-up\n    action: allow\n    from: { principals: [${JSON.stringify(snapshot.svid.spiffeId)}] }\n    to: { methods: [GET, POST], paths: ["/**"] }\n`);
    const authorization = policyAuthorization(() => ({ engine: policy.chain, explainDenials: false }), (ms) => metrics.recordAuthzLatency(ms));
    const env: FilterEnvironment = { configDir: process.cwd(), logger, listener: 'inbound', tls: true };
    const checks = await registry.headerChecks!.create({ headersWithUnderscores: 'drop' }, env);
    const sizes = await registry.limits!.create(limits, env);
    const upstream = new Http1Upstream({ address: app.address, headersTimeoutMs: limits.requestTimeout, bodyTimeoutMs: limits.idleTimeout, keepAliveTimeoutMs: limits.idleTimeout });
    stops.push(() => upstream.destroy());
    const inbound = new InboundHttpListener({
      host: '127.0.0.1',
      port: 0,
      tls: { minVersion: minTlsVersion, handshakeTimeout: limits.handshakeTimeout },
      trustDomain,
      ownId: () => snapshot.svid.spiffeId,
      limits,
      chain: chainOf([checks, sizes, await registry.peerAuthentication!.create({}, env), authorization]),
      upstream,
      appIsHttp2: false,
      guardEvents: IGNORE_GUARD,
      observe,
      logger,
    });
    inbound.updateTls(secureContextOptions(snapshot, minTlsVersion));
    const inboundAddress = await inbound.listen();
    stops.push(() => inbound.close(0));
    const routes = new OutboundRouteTable(
      [{ host: WARM_UP_HOST, address: { host: '127.0.0.1', port: inboundAddress.port }, spiffeId: snapshot.svid.spiffeId }],
      trustDomain,
      minTlsVersion,
      limits,
      snapshot,
      logger,
    );
    stops.push(() => routes.destroy());
    const outboundChain = chainOf([sizes]);
    const outbound = new OutboundListener({
      host: '127.0.0.1',
      port: 0,
      limits,
      headerChecks: checks,
      chainFor: () => outboundChain,
      routes,
      observe,
      guardEvents: IGNORE_GUARD,
      logger,
    });
    const outboundAddress = await outbound.listen();
    stops.push(() => outbound.close(0));
    // New pools each round: every round opens its connections anew, so the handshake's code (both ends of the
    // mTLS, the peer's certificate checks) is warm too, not only the requests'.
    const total: WarmUpResult = { sent: 0, failed: 0, ms: 0 };
    const deadline = performance.now() + settings.deadlineMs;
    for (let round = 0; round < POOL_ROUNDS; round++) {
      if (round > 0) routes.update(snapshot);
      const requests = Math.floor((settings.requests * (round + 1)) / POOL_ROUNDS) - Math.floor((settings.requests * round) / POOL_ROUNDS);
      const r = await sendWarmUpRequests(`127.0.0.1:${outboundAddress.port}`, WARM_UP_HOST, { requests, connections: CONNECTIONS, deadlineMs: Math.max(0, deadline - performance.now()) });
      total.sent += r.sent;
      total.failed += r.failed;
      total.ms += r.ms;
    }
    return total;
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}


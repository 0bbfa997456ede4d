// The ext_authz server's metrics, under the sidecar's names for the same meanings (telemetry/metrics.ts builds
// the shared series), so that one dashboard fits both. `meshward_requests_total` has direction "check" here, and
// its status is the gRPC code the CheckResponse carries (0 allows; 7, 16, 3, 8 deny), not an HTTP status.
//
// A Check records two CountTable increments and one histogram sample; the counts are read only at a scrape.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authzDecisionMetrics, createPrometheusMeter, denialSpikeCounter, policyReloadCounters, requestCounters } from '../../telemetry/index.js';
import type { PolicyReloadStats } from '../policy-reloader.js';

export interface AuthzServerMetrics {
  /** One answered Check: the decision's outcome and rule, and the CheckResponse's status.code. */
  recordCheck(outcome: string, rule: string, grpcStatus: number): void;
  /** The time the policy engine took to decide one Check. */
  recordDecisionLatency(ms: number): void;
  /** A caller's denials jumped well above its own baseline (telemetry/denial-spikes.ts). */
  recordDenialSpike(): void;
  /** Serves the Prometheus text exposition. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createAuthzServerMetrics(policyReloads: () => PolicyReloadStats): AuthzServerMetrics {
  const { meter, handle, shutdown } = createPrometheusMeter('meshward-authz');
  const { check } = requestCounters(meter, ['check'], 'Checks answered, by decision and the gRPC status code of the CheckResponse (0: allowed).');
  const decisions = authzDecisionMetrics(meter);
  policyReloadCounters(meter, policyReloads);
  return {
    recordCheck(outcome, rule, grpcStatus) {
      check.increment(outcome, grpcStatus);
      decisions.recordDecision(outcome, rule);
    },
    recordDecisionLatency: decisions.recordLatency,
    recordDenialSpike: denialSpikeCounter(meter),
    handle,
    shutdown,
  };
}

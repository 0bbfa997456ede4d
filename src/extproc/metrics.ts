// The ext_proc server's metrics, under the sidecar's names for the same meanings (telemetry/metrics.ts), so that one
// dashboard fits all: `meshward_requests_total` has direction "extproc" here, one count per request Envoy sent.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FilterMetrics } from '../filters/index.js';
import { authzDecisionMetrics, createPrometheusMeter, policyReloadCounters, requestCounters, storeErrorCounter, type PolicyReloadCounts } from '../telemetry/index.js';
import type { ProcessOutcome } from './process-stream.js';

export interface ExtProcMetrics extends FilterMetrics {
  recordRequest(outcome: ProcessOutcome): void;
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createExtProcMetrics(policyReloads: () => PolicyReloadCounts | undefined): ExtProcMetrics {
  const { meter, handle, shutdown } = createPrometheusMeter('meshward-extproc');
  const { extproc } = requestCounters(meter, ['extproc'], 'Requests Envoy had processed, by authorization decision and the status code the client was sent (0: not seen).');
  const decisions = authzDecisionMetrics(meter);
  policyReloadCounters(meter, policyReloads);
  return {
    recordRequest({ decision, status }) {
      extproc.increment(decision?.outcome ?? 'none', status);
      if (decision !== undefined) decisions.recordDecision(decision.outcome, decision.rule);
    },
    recordAuthzLatency: decisions.recordLatency,
    recordRateLimitStoreError: storeErrorCounter(meter),
    handle,
    shutdown,
  };
}

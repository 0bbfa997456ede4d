import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, ObservableResult } from '@opentelemetry/api';
import { createPrometheusMeter } from '../telemetry/prometheus.js';
import type { CaErrorCode } from './ca-error.js';
import type { AuditMethod, SignOutcome } from './sign-outcome.js';

// The serving CA's metrics, on its admin listener (telemetry/prometheus.ts: how they reach /metrics). They live
// here, not in src/telemetry, because they are made of the CA's own vocabulary (how a caller authenticated, the
// CaError codes) and telemetry sits below the components.
//
// Both label sets are closed and small (the methods a caller can authenticate by, the CaError codes), so every
// series is reported from the start, at 0: a rate() over refusals is defined before the first one. A Sign costs
// one counter increment on a prebuilt row and one histogram sample; the counts are read only at a scrape.

const ISSUING_METHODS: readonly AuditMethod[] = ['token', 'attested', 'renewal', 'self'];
const REFUSAL_REASONS: readonly CaErrorCode[] = ['unauthenticated', 'permission_denied', 'invalid_argument', 'failed_precondition', 'unavailable', 'internal'];

/** From the CSR check and signature to the records on disk (two durable writes): milliseconds; a slow disk, more. */
export const SIGN_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Read at each scrape. */
export interface CaGauges {
  /** When the certificate that signs SVIDs (the root, or an imported intermediate) expires. */
  signingNotAfter(): Date;
  /** When the CA's own serving SVID expires; undefined before it has one. */
  servingNotAfter(): Date | undefined;
}

export interface CaMetrics {
  /** One Sign outcome, once it is in the audit log. */
  recordSign(outcome: SignOutcome): void;
  /** The trust bundle published to WatchBundle streams changed, or the CA began signing with another root. */
  recordBundleChange(): void;
  /** Serves the Prometheus text exposition. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createCaMetrics(gauges: CaGauges): CaMetrics {
  const { meter, handle, shutdown } = createPrometheusMeter('meshward-ca');
  const issuances = new PresetCounts('method', ISSUING_METHODS);
  const refusals = new PresetCounts('reason', REFUSAL_REASONS);
  meter
    .createObservableCounter('meshward_ca_issuances_total', { description: 'SVIDs issued, by how the caller authenticated (self: the CA\'s own serving certificate).' })
    .addCallback((result) => issuances.observe(result));
  meter
    .createObservableCounter('meshward_ca_refusals_total', { description: 'Requests for an SVID refused, by reason (the gRPC-style code the caller got).' })
    .addCallback((result) => refusals.observe(result));
  const duration = meter.createHistogram('meshward_ca_sign_duration_seconds', {
    description: 'Time to decide a request for an SVID, issued or refused, up to (not including) writing its audit record.',
    unit: 's',
    advice: { explicitBucketBoundaries: SIGN_BUCKETS },
  });
  const decisionAttrs = { issued: { decision: 'issued' }, refused: { decision: 'refused' } };
  const bundleChanges = meter.createCounter('meshward_ca_bundle_changes_total', { description: 'Trust bundle changes published and root rotation steps applied since start.' });
  // Present from the start, so that a rate over it is defined before the first rotation.
  bundleChanges.add(0);

  const secondsUntil = (date: Date) => Math.max(0, (date.getTime() - Date.now()) / 1000);
  meter
    .createObservableGauge('meshward_ca_root_expiry_seconds', { description: 'Seconds until the certificate that signs SVIDs expires; no SVID outlives it.', unit: 's' })
    .addCallback((result) => result.observe(secondsUntil(gauges.signingNotAfter())));
  meter
    .createObservableGauge('meshward_svid_expiry_seconds', { description: 'Seconds until the CA\'s own serving SVID expires.', unit: 's' })
    .addCallback((result) => {
      const notAfter = gauges.servingNotAfter();
      if (notAfter !== undefined) result.observe(secondsUntil(notAfter));
    });

  return {
    recordSign(outcome) {
      if (outcome.decision === 'issued') issuances.increment(outcome.method);
      else refusals.increment(outcome.reason);
      duration.record(outcome.latencyMs / 1000, decisionAttrs[outcome.decision]);
    },
    recordBundleChange() {
      bundleChanges.add(1);
    },
    handle,
    shutdown,
  };
}

/** Counts by one label whose expected values are reported from the start; an unexpected value gets its row when first seen. */
class PresetCounts {
  private readonly rows = new Map<string, { attributes: Attributes; count: number }>();

  constructor(
    private readonly label: string,
    preset: readonly string[],
  ) {
    for (const value of preset) this.rows.set(value, { attributes: { [label]: value }, count: 0 });
  }

  increment(value: string): void {
    const row = this.rows.get(value);
    if (row === undefined) this.rows.set(value, { attributes: { [this.label]: value }, count: 1 });
    else row.count += 1;
  }

  observe(result: ObservableResult): void {
    for (const { attributes, count } of this.rows.values()) result.observe(count, attributes);
  }
}

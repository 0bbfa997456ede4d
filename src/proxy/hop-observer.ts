import { DenialSpikeDetector, redactedPath, warnDenialSpike, type AuditLog, type Logger, type SidecarMetrics } from '../telemetry/index.js';
import type { HopRecord } from './hop-record.js';

/** Metrics and audit records for every request; a log line for every refusal and failure (allowed requests only at debug). */
export function hopObserver(audit: AuditLog | undefined, metrics: SidecarMetrics, logger: Logger): (record: HopRecord) => void {
  const spikes = new DenialSpikeDetector();
  return (record) => {
    metrics.recordHop(record);
    const outcome = record.decision?.outcome;
    if (outcome === 'deny' || outcome === 'unauthenticated') {
      const spike = spikes.recordDenial(record.principal ?? record.sourceIp ?? 'unknown', Date.now());
      if (spike !== undefined) {
        metrics.recordDenialSpike();
        warnDenialSpike(logger, spike);
      }
    }
    if (audit !== undefined && record.decision !== undefined) {
      audit.enqueue({ type: 'authz', time: new Date().toISOString(), ...record, path: redactedPath(record.path), latencyMs: Math.round(record.latencyMs * 1000) / 1000 });
    }
    if (record.status >= 400 || record.status === 0 || record.decision?.outcome === 'deny') logger.info(record, 'request refused or failed');
    else if (logger.isLevelEnabled('debug')) logger.debug(record, 'request');
  };
}

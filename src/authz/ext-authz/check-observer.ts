// What happens after each Check is answered: metrics, denial-spike warnings and, with an audit log, one
// hash-chained record, in the shape of the sidecar's (type "authz"), so that one reader handles both logs.
//
// Audit records are sealed (JSON + SHA-256) and written off the response path: a Check queues its record and
// the queue is drained on the next turn of the event loop, after the answer has been handed to HTTP/2. The
// write itself is group-committed by the audit log, a few ms at a time (AFTER_ANSWER_WRITES); its failures
// are logged (server.ts, onWriteError), never answered.
import { AuditLog, DenialSpikeDetector, callerTraceId, TRACEPARENT, warnDenialSpike, redactedPath, type Logger } from '../../telemetry/index.js';
import type { AuthzRequest, Decision } from '../types.js';
import { decisionSummary, ruleOf } from '../decision-summary.js';
import type { AuthzServerMetrics } from './metrics.js';

/** One answered Check. */
export interface CheckRecord {
  requestId: string;
  /** What the policy judged; undefined when the CheckRequest could not be read as a request. */
  request: AuthzRequest | undefined;
  decision: Decision;
  /** The CheckResponse's status.code: 0 allows, anything else denies. */
  grpcStatus: number;
  /** The HTTP status Envoy answers the client with when denied; 200 when allowed. */
  httpStatus: number;
  /** The time the engine took to decide; undefined when the request was refused before it was asked. */
  decisionMs: number | undefined;
  /** From the CheckRequest's arrival to its answer. */
  latencyMs: number;
  /** Date.now() at the answer. */
  time: number;
}

export type CheckObserver = (record: CheckRecord) => void;

export interface ObservedChecks {
  observe: CheckObserver;
  /** Writes what is queued and closes the audit log (if any): after the last Check. */
  close(): Promise<void>;
}

export function observeChecks(metrics: AuthzServerMetrics, audit: AuditLog | undefined, logger: Logger): ObservedChecks {
  const spikes = new DenialSpikeDetector();
  const auditQueue = audit === undefined ? undefined : new AuditQueue(audit);
  return {
    observe(record) {
      const { decision, request } = record;
      metrics.recordCheck(decision.kind, ruleOf(decision), record.grpcStatus);
      if (record.decisionMs !== undefined) metrics.recordDecisionLatency(record.decisionMs);
      if (decision.kind === 'deny' || decision.kind === 'unauthenticated') {
        const spike = spikes.recordDenial(request?.principal ?? request?.sourceIp ?? 'unknown', record.time);
        if (spike !== undefined) {
          metrics.recordDenialSpike();
          warnDenialSpike(logger, spike);
        }
      }
      auditQueue?.push(record);
    },
    close: async () => {
      if (auditQueue !== undefined) await auditQueue.close();
    },
  };
}

class AuditQueue {
  private queue: CheckRecord[] = [];
  private scheduled = false;

  constructor(private readonly audit: AuditLog) {}

  push(record: CheckRecord): void {
    this.queue.push(record);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  async close(): Promise<void> {
    this.drain();
    await this.audit.close();
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const record of batch) this.audit.enqueue(auditRecordOf(record));
  }
}

/** The sidecar's audit record (type "authz"), with direction "check". Absent fields are left out by JSON. */
function auditRecordOf(record: CheckRecord): Record<string, unknown> {
  const { request } = record;
  return {
    type: 'authz',
    time: new Date(record.time).toISOString(),
    direction: 'check',
    requestId: record.requestId,
    traceId: callerTraceId(request?.headers[TRACEPARENT]),
    principal: request?.principal,
    sourceIp: request?.sourceIp,
    method: request?.method,
    host: request?.host,
    path: request === undefined ? undefined : redactedPath(request.path),
    decision: decisionSummary(record.decision),
    status: record.httpStatus,
    latencyMs: Math.round(record.latencyMs * 1000) / 1000,
  };
}

import type { HopContext, HopDecision } from '../filters/chain.js';
import type { HopDirection } from '../telemetry/index.js';

/** One request through a listener, as the audit log and metrics see it. */
export interface HopRecord {
  direction: HopDirection;
  requestId: string;
  traceId: string;
  principal?: string;
  sourceIp?: string;
  method: string;
  host: string;
  path: string;
  /** Undefined where no filter decided (outbound and ingress, unless a filter of theirs refused or authenticated). */
  decision?: HopDecision;
  /** The status the client got; 0 when the connection was cut before an answer. */
  status: number;
  /** Why forwarding failed, for the log; never sent to the client. */
  upstreamError?: string;
  latencyMs: number;
}

export type HopObserver = (record: HopRecord) => void;

/** The record of a request that went through a listener's filter chain; `host` as recorded (default: as received). */
export function hopRecordOf(ctx: HopContext, status: number, latencyMs: number, upstreamError?: string, direction: HopDirection = 'inbound', host = ctx.request.host): HopRecord {
  const { request } = ctx;
  // Absent fields stay undefined rather than being spread in: JSON (the audit log, pino) leaves them out anyway.
  return {
    direction,
    requestId: ctx.requestId,
    traceId: ctx.traceId,
    principal: request.principal,
    sourceIp: request.sourceIp,
    method: request.method,
    host,
    path: request.path,
    decision: ctx.decision,
    status,
    upstreamError,
    latencyMs,
  };
}

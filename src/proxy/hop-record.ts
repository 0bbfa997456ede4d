import type { HopContext, HopDecision } from '../filters/chain.js';

/** One request through a listener, as the audit log and metrics see it. */
export interface HopRecord {
  direction: 'inbound' | 'outbound';
  requestId: string;
  traceId: string;
  principal?: string;
  sourceIp?: string;
  method: string;
  host: string;
  path: string;
  /** Undefined outbound, where routes (not policies) decide. */
  decision?: HopDecision;
  /** The status the client got; 0 when the connection was cut before an answer. */
  status: number;
  /** Why forwarding failed, for the log; never sent to the client. */
  upstreamError?: string;
  latencyMs: number;
}

export type HopObserver = (record: HopRecord) => void;

/** The record of an inbound request that went through the filter chain. */
export function hopRecordOf(ctx: HopContext, status: number, latencyMs: number, upstreamError?: string): HopRecord {
  const { request } = ctx;
  // Absent fields stay undefined rather than being spread in: JSON (the audit log, pino) leaves them out anyway.
  return {
    direction: 'inbound',
    requestId: ctx.requestId,
    traceId: ctx.traceId,
    principal: request.principal,
    sourceIp: request.sourceIp,
    method: request.method,
    host: request.host,
    path: request.path,
    decision: ctx.decision,
    status,
    upstreamError,
    latencyMs,
  };
}

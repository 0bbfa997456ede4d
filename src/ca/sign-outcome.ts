import { userInfo } from 'node:os';
import type { CaErrorCode } from './ca-error.js';

// What became of one request for an SVID, as the audit log and the metrics see it. Pure, apart from asking the
// OS who the local operator is. Nothing secret goes in: no token, no key, no CSR; a refusal's message is the
// CaError's, which names IDs and reasons only.

/** How the caller authenticated, in the audit log's words (metrics label `method`). */
export type AuditMethod = 'token' | 'attested' | 'renewal' | 'offline' | 'self' | 'none';

/** What is known of a request while it is being decided; filled in as the caller is authenticated. */
export interface SignAttempt {
  method: AuditMethod;
  /** Who the caller proved to be: an SVID's or a token's SPIFFE ID, the attested ID, or the local operator. */
  principal?: string;
  /** The ID asked for, or when none was, the one the caller is entitled to. */
  spiffeId?: string;
  requestId?: string;
  traceId?: string;
}

export type SignOutcome = SignAttempt & { latencyMs: number } & (
    | { decision: 'issued'; serial: string; notAfter: Date; dnsNames?: string[] }
    | { decision: 'refused'; reason: CaErrorCode; message: string }
  );

/** The audit record of one outcome (`type: 'ca'`); `meshward audit verify` checks the chain of them. */
export function auditRecordOf(outcome: SignOutcome, time: Date): Record<string, unknown> {
  const record: Record<string, unknown> = { type: 'ca', time: time.toISOString() };
  if (outcome.requestId !== undefined) record.requestId = outcome.requestId;
  if (outcome.traceId !== undefined) record.traceId = outcome.traceId;
  if (outcome.principal !== undefined) record.principal = outcome.principal;
  record.method = outcome.method;
  if (outcome.spiffeId !== undefined) record.spiffeId = outcome.spiffeId;
  record.decision = outcome.decision;
  if (outcome.decision === 'issued') {
    record.serial = outcome.serial;
    record.notAfter = outcome.notAfter.toISOString();
    if (outcome.dnsNames?.length) record.dnsNames = outcome.dnsNames;
  } else {
    record.reason = outcome.reason;
    record.message = outcome.message;
  }
  record.latencyMs = Math.round(outcome.latencyMs * 1000) / 1000;
  return record;
}

/** The person behind `ca issue` / `ca sign`: `operator:NAME`, or `operator:uid:N` where the uid has no name (containers). */
export function operatorPrincipal(): string {
  try {
    return `operator:${userInfo().username}`;
  } catch {
    return `operator:uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

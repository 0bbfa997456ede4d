import { randomFillSync } from 'node:crypto';

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header that ties the hops of one
// request together. A sidecar keeps the caller's trace when the header is valid, and starts one when it is absent or
// malformed, so that the audit records and logs of every hop of a request carry the same trace id. A new trace is
// not sampled (flags 00): the sidecar does not decide sampling for the app's tracer.

export const TRACEPARENT = 'traceparent';

const VALID = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export interface TraceContext {
  traceId: string;
  /** The header value to send on: the caller's when it was valid, else a new one. */
  traceparent: string;
  /** Whether the sidecar made `traceparent` (the caller sent none, or an invalid one). */
  started: boolean;
  /** The caller's span, when its header was valid: the parent of the spans a tracing sidecar records. */
  parent?: { traceId: string; spanId: string; sampled: boolean };
}

export function traceContextOf(header: string | string[] | undefined): TraceContext {
  const caller = callerSpanOf(header);
  if (caller !== undefined) return { traceId: caller.parent.traceId, traceparent: caller.traceparent, started: false, parent: caller.parent };
  const ids = randomIds();
  const traceId = ids.slice(0, 32);
  return { traceId, traceparent: `00-${traceId}-${ids.slice(32)}-00`, started: true };
}

/**
 * The caller's trace id when it sent a valid `traceparent`, else undefined: for a server that records the trace it
 * was called in but starts none of its own (it has no one to pass one on to).
 */
export function callerTraceId(header: string | string[] | undefined): string | undefined {
  return callerSpanOf(header)?.parent.traceId;
}

function callerSpanOf(header: string | string[] | undefined): { parent: NonNullable<TraceContext['parent']>; traceparent: string } | undefined {
  const match = typeof header === 'string' ? VALID.exec(header.trim()) : null;
  // Version ff is forbidden, and all-zero ids are invalid.
  if (match === null || match[1] === 'ff' || match[2] === ZERO_TRACE || match[3] === ZERO_SPAN) return undefined;
  // Bit 0 of the flags is "sampled"; the other bits are reserved.
  return { parent: { traceId: match[2]!, spanId: match[3]!, sampled: (parseInt(match[4]!, 16) & 1) === 1 }, traceparent: match[0] };
}

/** The header for a span: version 00, its ids, and the sampled flag. */
export function traceparentOf(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

// Random bytes for new trace ids, drawn from the CSPRNG 256 ids at a time (as Node's randomUUID does): one
// randomBytes call per request was ~3% of an outbound hop's CPU in bench/hop.mjs profiles.
const IDS_PER_FILL = 256;
const pool = Buffer.alloc(24 * IDS_PER_FILL);
let next = IDS_PER_FILL;

/** 48 hex digits: a 16-byte trace id then an 8-byte span id. */
function randomIds(): string {
  if (next === IDS_PER_FILL) {
    randomFillSync(pool);
    next = 0;
  }
  const start = 24 * next++;
  return pool.toString('hex', start, start + 24);
}

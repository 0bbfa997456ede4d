import { DownstreamGone, RequestTimedOut } from './downstream-signal.js';
import type { LocalReply } from '../filters/local-reply.js';
import { replies } from '../filters/local-reply.js';
import { SERVER_IDENTITY_MISMATCH } from './server-identity-check.js';

// How forwarding a request ended, for the audit record and metrics; and, when nothing was sent to the client yet,
// the reply that tells it. Upstream error text stays in the logs; the client learns only the kind of failure.

export type ForwardOutcome =
  | { ok: true; status: number }
  | { ok: false; kind: 'unavailable' | 'timeout' | 'failed' | 'too_large' | 'aborted' | 'request_timeout' | 'identity'; detail: string };

export function failureReply(outcome: Extract<ForwardOutcome, { ok: false }>, requestId: string, what: string, maxBodyBytes: number): LocalReply {
  switch (outcome.kind) {
    case 'unavailable':
      return replies.unavailable(requestId, what);
    case 'timeout':
      return replies.gatewayTimeout(requestId);
    case 'too_large':
      return replies.tooLarge(requestId, maxBodyBytes);
    case 'identity':
      // Only an outbound route meets this, and its client is the local app, which may learn both IDs.
      return replies.serverIdentityMismatch(requestId, outcome.detail);
    case 'request_timeout':
      return replies.requestTimeout(requestId);
    default:
      return replies.badGateway(requestId);
  }
}

/**
 * The request's signal aborted (downstream-signal.ts): the client went away first (nothing to answer, and nothing
 * the upstream did wrong), or its HTTP/2 body was later than requestTimeout (408).
 */
export function abandoned(reason: unknown): Extract<ForwardOutcome, { ok: false }> {
  if (reason instanceof RequestTimedOut) return { ok: false, kind: 'request_timeout', detail: reason.message };
  return { ok: false, kind: 'aborted', detail: new DownstreamGone().message };
}

/** Failures the client caused (it left, or was too slow): no upstream fault to warn about. */
export function isClientFault(outcome: Extract<ForwardOutcome, { ok: false }>): boolean {
  return outcome.kind === 'aborted' || outcome.kind === 'request_timeout';
}

// EMFILE / ENFILE: this process is out of file descriptors; /readyz says so as well (serving-health.ts).
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'EPIPE', 'EMFILE', 'ENFILE']);
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** Classifies an error from undici or node:http2 / node:tls. */
export function classifyUpstreamError(err: unknown): Extract<ForwardOutcome, { ok: false }> {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e?.code ?? e?.cause?.code ?? '';
  const detail = e instanceof Error ? `${code ? `${code}: ` : ''}${e.message}` : String(err);
  if (code === SERVER_IDENTITY_MISMATCH) return { ok: false, kind: 'identity', detail: e.message };
  if (code === 'BODY_TOO_LARGE') return { ok: false, kind: 'too_large', detail };
  if (TIMEOUTS.has(code)) return { ok: false, kind: 'timeout', detail };
  if (CONNECT_FAILURES.has(code)) return { ok: false, kind: 'unavailable', detail };
  return { ok: false, kind: 'failed', detail };
}

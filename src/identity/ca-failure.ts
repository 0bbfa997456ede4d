import { status } from '@grpc/grpc-js';

// What went wrong on a call to the CA, in words an operator can act on, and whether trying again can help. The
// gRPC library's own text ("No connection established. Last error: … Resolution note:") is never shown as it is:
// the reason inside it is picked out and named.

export interface CaFailure {
  /** Trying again may help: the CA is not up yet, the network or DNS is not ready, the CA was busy. */
  transient: boolean;
  reason: string;
}

/** Refusals the CA means: the request itself is wrong, and sending it again gets the same answer. */
const FINAL = new Set<number>([status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.UNIMPLEMENTED, status.NOT_FOUND]);

const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'DNS: the host name does not resolve',
  EAI_AGAIN: 'DNS: the lookup failed for now',
};

export function describeCaFailure(err: unknown): CaFailure {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code !== 'number' || typeof e.details !== 'string') {
    return { transient: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const details = e.details;
  if (FINAL.has(e.code)) return { transient: false, reason: details };
  if (e.code === status.DEADLINE_EXCEEDED) return { transient: true, reason: 'no answer in time' };
  if (e.code !== status.UNAVAILABLE) return { transient: true, reason: details };
  if (details.startsWith('Name resolution failed')) return { transient: true, reason: 'DNS: the host name does not resolve' };
  const lastError = /Last error: (?:Error: )?([\s\S]*?)\.?\s*Resolution note:/.exec(details)?.[1];
  if (lastError === undefined) {
    // The CA's own "unavailable" (e.g. its audit log cannot be written) is already in plain words.
    return { transient: true, reason: /^(No connection established|Connection dropped)/.test(details) ? 'the connection failed' : details };
  }
  const code = /\b(E[A-Z_]+)\b/.exec(lastError)?.[1];
  if (code !== undefined && SOCKET_ERRORS[code]) return { transient: true, reason: SOCKET_ERRORS[code] };
  if (/certificate|SSL|TLS|handshake|alert|not the CA|not an SVID/i.test(lastError)) return { transient: true, reason: `TLS failure: ${lastError}` };
  return { transient: true, reason: `connection failed: ${lastError}` };
}

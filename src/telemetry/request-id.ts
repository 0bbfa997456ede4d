import { randomUUID } from 'node:crypto';

// A caller's x-request-id goes into log lines, audit records, spans and the next hop's request, so it is kept
// only when it cannot be a credential a client put there by mistake (a bearer token, an API key, a JWT):
//   - at most 64 characters of A-Z a-z 0-9 "." "_" "-" (no "=", "+", "/", ":" or spaces: no base64, no
//     `user:password`, no `Bearer x`);
//   - no unbroken run of more than 16 letters and digits. Generated secrets are long runs of random characters
//     (API keys of 32 hex or 40 base62 characters, each part of a JWT, which is 20 or more); request ids are
//     UUIDs (runs of 8, 4 and 12 hex digits, what Envoy and meshward make), words, counters and timestamps
//     joined by separators.
// What this refuses (a 32-digit hex id without dashes, a ULID) is replaced by a new UUID: correlation with that
// caller is lost, which is the cheaper mistake.
const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const LONG_RUN = /[A-Za-z0-9]{17}/;

function isSafeRequestId(value: string): boolean {
  return SAFE_ID.test(value) && !LONG_RUN.test(value);
}

/** The caller's x-request-id when it is a safe id (so that records line up across hops), else a new one from `newId`. */
export function requestIdOf(value: string | string[] | undefined, newId: () => string = randomUUID): { id: string; generated: boolean } {
  if (typeof value === 'string' && isSafeRequestId(value)) return { id: value, generated: false };
  return { id: newId(), generated: true };
}

import { formatDuration } from '../config/duration.js';

// How long an SVID lives: the requested TTL, capped by the CA's maximum and by the issuer's own expiry,
// back-dated a little so that a peer whose clock is slightly behind accepts it at once.

export const BACKDATE_SECONDS = 30;
export const DEFAULT_MAX_SVID_TTL_SECONDS = 24 * 3600;
export const DEFAULT_SVID_TTL_SECONDS = 3600;

export interface ValidityInput {
  now: Date;
  requestedTtlSeconds?: number;
  maxTtlSeconds: number;
  defaultTtlSeconds: number;
  issuerNotAfter: Date;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
  /** Set when the certificate is shorter than asked for; says why. */
  notice?: string;
}

export function svidValidity(input: ValidityInput): Validity {
  const now = input.now.getTime();
  const requested = input.requestedTtlSeconds && input.requestedTtlSeconds > 0 ? input.requestedTtlSeconds : Math.min(input.defaultTtlSeconds, input.maxTtlSeconds);
  let notAfter = now + requested * 1000;
  let notice: string | undefined;
  if (requested > input.maxTtlSeconds) {
    notAfter = now + input.maxTtlSeconds * 1000;
    notice = `requested TTL ${formatDuration(requested)} exceeds the CA maximum ${formatDuration(input.maxTtlSeconds)}; issued for ${formatDuration(input.maxTtlSeconds)}`;
  }
  if (notAfter > input.issuerNotAfter.getTime()) {
    notAfter = input.issuerNotAfter.getTime();
    notice = `the SVID ends when the CA certificate does, at ${input.issuerNotAfter.toISOString()}`;
  }
  // X.509 times have second precision; round down so the certificate never outlives what was computed.
  notAfter = Math.floor(notAfter / 1000) * 1000;
  const notBefore = Math.floor(now / 1000) * 1000 - BACKDATE_SECONDS * 1000;
  if (notAfter <= now) throw new Error(`the CA certificate expired at ${input.issuerNotAfter.toISOString()}; rotate or re-import it`);
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter), ...(notice ? { notice } : {}) };
}

// When to renew an SVID and how long to wait after a failure. Pure, so the timing rules are tested directly.

/** Renew at half the lifetime, ±10% jitter so that a fleet issued together does not renew together. */
export function renewalDelayMs(notBefore: Date, notAfter: Date, now: Date, random: () => number = Math.random): number {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const jitter = (random() * 2 - 1) * 0.1 * lifetime;
  const renewAt = notBefore.getTime() + lifetime / 2 + jitter;
  return Math.max(0, renewAt - now.getTime());
}

/** Exponential backoff with full jitter: 0.5 s, 1 s, 2 s … capped, never past the current SVID's expiry. */
export function retryDelayMs(attempt: number, msUntilExpiry: number, random: () => number = Math.random, capMs = 30_000): number {
  const ceiling = Math.min(capMs, 500 * 2 ** Math.min(attempt, 16));
  const delay = ceiling / 2 + (random() * ceiling) / 2;
  return Math.max(100, Math.min(delay, msUntilExpiry > 0 ? msUntilExpiry / 2 : delay));
}

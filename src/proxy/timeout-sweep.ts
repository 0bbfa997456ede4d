import type { Limits } from '../config/index.js';

// Node's HTTP/1.1 server enforces headersTimeout and requestTimeout only when it sweeps its connections, every
// connectionsCheckingInterval (30 s unless set): a limit shorter than the sweep is not a limit at all. Sweeping at a
// quarter of the shorter limit (at least once a second, at most every 50 ms) cuts a slow client off within 1.25× it.
export function connectionsCheckingInterval(limits: Pick<Limits, 'headersTimeout' | 'requestTimeout'>): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeout, limits.requestTimeout) / 4)));
}

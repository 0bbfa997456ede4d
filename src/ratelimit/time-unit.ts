// The units of envoyproxy/ratelimit's limits and the fixed windows they count in. As there, a window starts at a
// multiple of its length since the Unix epoch (a day starts at 00:00 UTC), and a month is 30 days, a year 365:
// fixed lengths, so that every replica cuts windows at the same instants without agreeing on a calendar.

/** The units of RateLimitResponse.RateLimit.Unit, by their proto names (the enum's numbers are their indexes + 1). */
export const TIME_UNITS = ['SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR'] as const;
export type TimeUnit = (typeof TIME_UNITS)[number];

const DAY = 86_400;
const UNIT_SECONDS: Record<TimeUnit, number> = { SECOND: 1, MINUTE: 60, HOUR: 3_600, DAY, MONTH: 30 * DAY, YEAR: 365 * DAY };

export function unitSeconds(unit: TimeUnit): number {
  return UNIT_SECONDS[unit];
}

/** The proto enum number of a unit (SECOND = 1 … YEAR = 6). */
export function unitNumber(unit: TimeUnit): number {
  return TIME_UNITS.indexOf(unit) + 1;
}

/** The unit of a proto enum number, or undefined for UNKNOWN (0) and numbers this version does not know. */
export function unitOfNumber(value: number): TimeUnit | undefined {
  return TIME_UNITS[value - 1];
}

export interface FixedWindow {
  /** Unix seconds at which the window began: part of the counter's key. */
  start: number;
  /** Whole seconds until the next window begins (at least 1). */
  resetSeconds: number;
}

export function fixedWindow(nowSeconds: number, windowSeconds: number): FixedWindow {
  const now = Math.floor(nowSeconds);
  const start = now - (now % windowSeconds);
  return { start, resetSeconds: start + windowSeconds - now };
}

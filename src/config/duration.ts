// Durations as operators write them in flags and YAML: "90s", "10m", "1h", "1h30m", "7d". Strict on purpose:
// a bare number is refused, because its unit would be a guess.

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Parses a duration into seconds, or returns an error message naming the input. */
export function parseDuration(input: string): { ok: true; seconds: number } | { ok: false; error: string } {
  const text = input.trim();
  if (!DURATION.test(text)) return { ok: false, error: `"${input}" is not a duration (examples: 30s, 10m, 1h, 1h30m, 7d)` };
  let seconds = 0;
  for (const [, value, unit] of text.matchAll(PART)) seconds += Number(value) * UNIT_SECONDS[unit!]!;
  if (seconds <= 0) return { ok: false, error: `"${input}" must be longer than zero` };
  return { ok: true, seconds };
}

export function mustParseDuration(input: string, what: string): number {
  const r = parseDuration(input);
  if (!r.ok) throw new Error(`${what}: ${r.error}`);
  return r.seconds;
}

/** The shortest exact spelling: 86400 → "24h", 90 → "1m30s". */
export function formatDuration(seconds: number): string {
  let rest = Math.round(seconds);
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

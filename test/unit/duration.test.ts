import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

describe('durations', () => {
  it.each([
    ['30s', 30],
    ['10m', 600],
    ['1h30m', 5400],
    ['7d', 604800],
    ['1.5h', 5400],
    ['250ms', 0.25],
  ])('parses %s', (text, seconds) => expect(parseDuration(text)).toEqual({ ok: true, seconds }));
  it.each(['', '10', '1 h', 'h', '-1s', '0s', '1y'])('refuses %j', (text) => expect(parseDuration(text).ok).toBe(false));
  it('formats exactly', () => {
    expect(formatDuration(86400)).toBe('1d');
    expect(formatDuration(90)).toBe('1m30s');
  });
});

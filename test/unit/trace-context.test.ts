import { describe, expect, it } from 'vitest';
import { traceContextOf } from '../../src/telemetry/index.js';

describe('trace context', () => {
  it("keeps a caller's valid traceparent", () => {
    const header = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(traceContextOf(header)).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      traceparent: header,
      started: false,
      parent: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true },
    });
  });

  it('reads the sampled flag from bit 0 only', () => {
    expect(traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00').parent?.sampled).toBe(false);
    expect(traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03').parent?.sampled).toBe(true);
    expect(traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02').parent?.sampled).toBe(false);
  });

  it('starts an unsampled trace when the header is absent or invalid', () => {
    for (const header of [
      undefined,
      '',
      'garbage',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x'],
    ]) {
      const trace = traceContextOf(header);
      expect(trace.started).toBe(true);
      expect(trace.traceparent).toMatch(new RegExp(`^00-${trace.traceId}-[0-9a-f]{16}-00$`));
    }
    expect(traceContextOf(undefined).traceId).not.toBe(traceContextOf(undefined).traceId);
  });
});

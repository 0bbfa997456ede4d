import { describe, expect, it } from 'vitest';
import { percentEncode } from '../../src/grpc/grpc-response.js';

describe('grpc-message percent-encoding', () => {
  it('keeps printable ASCII and escapes %, controls and non-ASCII as UTF-8 bytes', () => {
    expect(percentEncode('CA:TRUE refused; see spiffe://example.org/a?b=c')).toBe('CA:TRUE refused; see spiffe://example.org/a?b=c');
    expect(percentEncode('100% sure\nnext')).toBe('100%25 sure%0Anext');
    expect(percentEncode('café 🚀')).toBe('caf%C3%A9 %F0%9F%9A%80');
    expect(decodeURIComponent(percentEncode('mixed % é :/'))).toBe('mixed % é :/');
  });
});

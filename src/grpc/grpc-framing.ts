// gRPC's HTTP/2 message framing (grpc/grpc doc/PROTOCOL-HTTP2.md): each message is a 1-byte compressed flag,
// a 4-byte big-endian length and the bytes. Pure: the transport feeds chunks in and gets messages or a
// protocol error back, so every framing rule is tested without a socket.
import { status } from '@grpc/grpc-js';

/** gRPC's default receive limit; a larger Check request is not something Envoy sends. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const PREFIX_BYTES = 5;

/** A protocol violation, answered with this gRPC status. */
export interface FramingError {
  code: status;
  message: string;
}

export type Framed<T> = { ok: true; value: T } | { ok: false; error: FramingError };

/**
 * Collects length-prefixed messages from a stream of chunks. Compressed messages are refused: meshward
 * advertises only `identity`, so a compressed one is the peer breaking the protocol.
 */
export class MessageReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {}

  /** Adds a chunk; returns the messages it completes, or the first framing error. */
  push(chunk: Buffer): Framed<Buffer[]> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const messages: Buffer[] = [];
    while (this.pendingBytes >= PREFIX_BYTES) {
      const head = this.peekPrefix();
      if (head.compressed) {
        return fail(status.INTERNAL, 'compressed message received but no grpc-encoding was negotiated');
      }
      if (head.length > this.maxMessageBytes) {
        return fail(status.RESOURCE_EXHAUSTED, `received message larger than max (${head.length} vs. ${this.maxMessageBytes})`);
      }
      if (this.pendingBytes < PREFIX_BYTES + head.length) break;
      const all = this.take(PREFIX_BYTES + head.length);
      messages.push(all.subarray(PREFIX_BYTES));
    }
    return { ok: true, value: messages };
  }

  /** True when a message has started but not finished: the stream ended mid-message. */
  get hasPartialMessage(): boolean {
    return this.pendingBytes > 0;
  }

  private peekPrefix(): { compressed: boolean; length: number } {
    const first = this.pending[0]!;
    const prefix = first.length >= PREFIX_BYTES ? first : Buffer.concat(this.pending, this.pendingBytes);
    return { compressed: prefix[0] !== 0, length: prefix.readUInt32BE(1) };
  }

  private take(bytes: number): Buffer {
    // The common case: one chunk holds exactly one message, so no copy is made.
    const joined = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return taken;
  }
}

/** Prefixes a serialised message for the wire (never compressed). */
export function frameMessage(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, PREFIX_BYTES);
  return framed;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };
const TIMEOUT_PATTERN = /^(\d{1,8})([HMSmun])$/;

/**
 * The `grpc-timeout` header in milliseconds; undefined when absent, an error when malformed.
 * Sub-millisecond timeouts round up to 1 ms: the caller's deadline has not passed yet.
 */
export function parseGrpcTimeout(value: string | undefined): Framed<number | undefined> {
  if (value === undefined) return { ok: true, value: undefined };
  const match = TIMEOUT_PATTERN.exec(value);
  if (!match) return fail(status.INTERNAL, `invalid grpc-timeout value "${value.slice(0, 20)}"`);
  return { ok: true, value: Math.max(1, Math.ceil(Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]!)) };
}

function fail(code: status, message: string): { ok: false; error: FramingError } {
  return { ok: false, error: { code, message } };
}

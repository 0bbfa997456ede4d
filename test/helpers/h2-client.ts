import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

// HTTP/2 clients for the tests, driven frame by frame as an attacker would: node:http2 sends HEADERS and RST_STREAM
// when told to, and nothing else gets in the way (no retries, no pooling).

export interface MtlsIdentity {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** The SVID DIR/<name>.pem + .key and the mesh bundle, as a TLS client identity. */
export function identityOf(dir: string, name: string, bundle: string): MtlsIdentity {
  return { cert: readFileSync(join(dir, `${name}.pem`)), key: readFileSync(join(dir, `${name}.key`)), ca: readFileSync(bundle) };
}

/** HTTP/2 over mTLS (ALPN h2) to an inbound listener, or prior-knowledge h2c to an outbound one when `identity` is absent. */
export function connectH2(address: string, identity?: MtlsIdentity, options: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  const session = identity
    ? http2.connect(`https://${address}`, { ...identity, servername: 'localhost', ...options })
    : http2.connect(`http://${address}`, options);
  session.on('error', () => undefined);
  return session;
}

export function connected(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    if (session.connecting === false && !session.destroyed) resolve();
    else session.once('connect', () => resolve()).once('error', reject).once('close', () => reject(new Error('the session closed before it connected')));
  });
}

export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream's RST_STREAM code when it was reset, else undefined. */
  rstCode?: number;
  error?: string;
}

/** One request; resolves when the answer has ended or the stream failed, within `waitMs`. */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  options: { body?: Buffer | string; waitMs?: number } = {},
): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'GET', ...headers }, { endStream: options.body === undefined });
    let answer: H2Answer = { status: 0, headers: {}, body: '' };
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) answer.rstCode = stream.rstCode;
      if (error !== undefined) answer.error = error;
      resolve(answer);
    };
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      finish('timeout');
    }, options.waitMs ?? 5000);
    stream.on('response', (h) => (answer = { ...answer, status: Number(h[':status']), headers: h }));
    stream.on('data', (d: Buffer) => (answer.body += d.toString()));
    stream.on('error', (err: Error) => finish(err.message));
    stream.on('close', () => finish());
    if (options.body !== undefined) stream.end(options.body);
  });
}

/**
 * The rapid-reset pattern: HEADERS (with END_STREAM) and at once RST_STREAM(CANCEL), `count` times, `perTick` streams
 * per event-loop turn so that they leave in few writes. Resolves with how many streams were opened before the session
 * went away (GOAWAY, or closed).
 */
export async function rapidReset(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, count: number, perTick = 50): Promise<number> {
  let opened = 0;
  while (opened < count && !session.closed && !session.destroyed) {
    for (let i = 0; i < perTick && opened < count; i++) {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({ ':method': 'GET', ...headers }, { endStream: true });
      } catch {
        return opened;
      }
      stream.on('error', () => undefined);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      opened += 1;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return opened;
}

/**
 * A raw HTTP/2 client that writes frames itself, as an attacker's tool does: no stream bookkeeping, no flow control,
 * no waiting. It answers the server's SETTINGS, and records every GOAWAY's error code.
 */
export class RawH2Connection {
  readonly goaways: number[] = [];
  /** When (performance.now()) the first GOAWAY arrived. */
  goawayAt: number | undefined;
  /** RST_STREAM frames received: stream id → error code. */
  readonly resets = new Map<number, number>();
  /** The server sent its SETTINGS: an HTTP/2 session was set up (a connection refused outright never gets one). */
  served = false;
  /** Resolves with `served` once the server's SETTINGS arrived, or the connection closed first. */
  readonly ready: Promise<boolean>;
  readonly closed: Promise<void>;
  private onSettings: (() => void) | undefined;
  private onPingAck: (() => void) | undefined;
  private nextStreamId = 1;
  private pending = Buffer.alloc(0);

  constructor(readonly socket: Duplex) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.ready = Promise.race([new Promise<void>((resolve) => (this.onSettings = resolve)), this.closed]).then(() => this.served);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** `count` streams, each opened (HEADERS with END_STREAM) and reset (RST_STREAM CANCEL) at once, in one write. */
  rapidReset(authority: string, path: string, count: number): Promise<void> {
    return this.streams(authority, path, count, true);
  }

  /** `count` GET streams (HEADERS with END_STREAM) in one write, whatever the server's SETTINGS allow. */
  openStreams(authority: string, path: string, count: number): Promise<void> {
    return this.streams(authority, path, count, false);
  }

  /**
   * A PING, resolved by its ACK (or the connection closing): the server answers frames in order, so by then it has
   * taken in everything sent before it.
   */
  ping(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    const acked = Promise.race([new Promise<void>((resolve) => (this.onPingAck = resolve)), this.closed]);
    this.socket.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
    return acked;
  }

  /** Leaves out the next `count` stream ids (RFC 9113 5.1.1: they are closed, never opened). */
  skipStreamIds(count: number): void {
    this.nextStreamId += 2 * count;
  }

  private streams(authority: string, path: string, count: number, reset: boolean): Promise<void> {
    const block = Buffer.concat([Buffer.from([0x82, 0x87]), literal(4, path), literal(1, authority)]);
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.nextStreamId;
      this.nextStreamId += 2;
      frames.push(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, id, block));
      if (reset) frames.push(frame(FRAME.RST_STREAM, 0, id, uint32(http2.constants.NGHTTP2_CANCEL)));
    }
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else this.socket.write(Buffer.concat(frames), () => resolve());
    });
  }

  private read(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) return;
      const [type, flags, streamId] = [this.pending[3]!, this.pending[4]!, this.pending.readUInt32BE(5) & 0x7fffffff];
      const payload = this.pending.subarray(9, 9 + length);
      this.pending = this.pending.subarray(9 + length);
      if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) {
        this.served = true;
        this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
        this.onSettings?.();
      }
      if (type === FRAME.GOAWAY) {
        this.goawayAt ??= performance.now();
        this.goaways.push(payload.readUInt32BE(4));
      }
      if (type === FRAME.RST_STREAM) this.resets.set(streamId, payload.readUInt32BE(0));
      if (type === FRAME.PING && flags & FLAG.ACK) this.onPingAck?.();
    }
  }
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME = { HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;
const FLAG = { ACK: 0x1, END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

function uint32(value: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value);
  return buf;
}

/** HPACK "literal header field without indexing", the name by its static-table index (RFC 7541 6.2.2); short values only. */
function literal(nameIndex: number, value: string): Buffer {
  if (value.length > 126) throw new Error('literal(): values up to 126 bytes');
  return Buffer.concat([Buffer.from([nameIndex, value.length]), Buffer.from(value, 'latin1')]);
}

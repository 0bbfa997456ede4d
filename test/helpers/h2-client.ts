import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';

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

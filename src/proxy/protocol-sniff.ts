import type { Socket } from 'node:net';

// Tells an HTTP/2 prior-knowledge connection (h2c, as gRPC clients open to a plain port) from HTTP/1.1 by its first
// bytes: HTTP/2 starts with the connection preface "PRI * HTTP/2.0", which no HTTP/1.1 method spells.

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

export function sniffHttp2(socket: Socket, timeoutMs: number, decide: (isHttp2: boolean) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const prefixMatches = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (prefixMatches && seen.length < PREFACE.length) return;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    socket.unshift(seen);
    decide(prefixMatches);
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
}

import type { IncomingMessage } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { DownstreamSignal } from './downstream-signal.js';

// The request body to send on, capped. A declared Content-Length over the cap is refused before this (413); an
// HTTP/1.1 body with a declared length is held to it by Node's parser, so it passes as is. Anything else (chunked,
// or HTTP/2, whose DATA frames Node does not hold to content-length) is counted as it streams.

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;

/**
 * Whether the request came over an HTTP/2 connection. Not `httpVersionMajor`: Node's HTTP/1.1 parser accepts a
 * request line that says "HTTP/2.0" and reports version 2 for it, on a connection that is plain HTTP/1.1.
 */
export function isHttp2(req: DownstreamRequest): req is Http2ServerRequest {
  return req instanceof Http2ServerRequest;
}

export function hasBody(req: DownstreamRequest): boolean {
  if (isHttp2(req)) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/** A body the client is still sending (HTTP/1.1): answering without reading it means the connection must close. */
export function hasUnreadBody(req: DownstreamRequest): boolean {
  return !isHttp2(req) && hasBody(req) && !req.readableEnded;
}

export function requestBody(req: DownstreamRequest, maxBytes: number): Readable | null {
  if (!hasBody(req)) return null;
  if (!isHttp2(req) && req.headers['content-length'] !== undefined) return req;
  const capped = bodyCap(maxBytes);
  req.on('error', (err) => capped.destroy(err));
  if (isHttp2(req)) {
    // node:http2's compat request ends exactly as a finished body does when its stream is reset (it pushes EOF, and
    // tells of the reset only by an 'aborted' event just before): a cut-off upload must reach the app as a failed
    // request, never as a shorter complete one.
    const h2req = req;
    const cut = () => capped.destroy(streamReset());
    if (h2req.aborted) cut();
    else h2req.once('aborted', cut);
  }
  return req.pipe(capped);
}

/** Passes a streamed body through until it exceeds `maxBytes`, then fails with code BODY_TOO_LARGE. */
function bodyCap(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) {
        callback(Object.assign(new Error(`the request body is larger than ${maxBytes} bytes`), { code: 'BODY_TOO_LARGE' }));
        return;
      }
      callback(null, chunk);
    },
  });
}

/**
 * The whole body, for filters that read it (filters/chain.ts): undefined once it passes `maxBytes` (the rest is
 * left unread; the reply closes an HTTP/1.1 connection). Rejects when the client goes away or `signal` aborts
 * before the end, and when an HTTP/2 stream is reset: a cut-off body is never taken for a whole one.
 */
export function readWholeBody(req: DownstreamRequest, maxBytes: number, signal: DownstreamSignal): Promise<Buffer | undefined> {
  if (!hasBody(req)) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (outcome: () => void) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAborted);
      req.off('error', onError);
      signal.removeListener('abort', onAbort);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      req.pause();
      finish(() => resolve(undefined));
    };
    const onEnd = () => finish(() => (isHttp2(req) && req.aborted ? reject(streamReset()) : resolve(Buffer.concat(chunks, size))));
    const onAborted = () => finish(() => reject(streamReset()));
    const onError = (err: Error) => finish(() => reject(err));
    const onAbort = () => finish(() => reject(signal.reason!));
    if (signal.aborted) return onAbort();
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('aborted', onAborted);
    req.once('error', onError);
    signal.once('abort', onAbort);
  });
}

function streamReset(): Error {
  return Object.assign(new Error('the client reset the request stream'), { code: 'ERR_HTTP2_STREAM_RESET' });
}

// Writing gRPC responses on a raw HTTP/2 stream: response headers, length-prefixed messages, and the
// grpc-status / grpc-message trailers (or a trailers-only response when there is no message).
// Every function is a no-op on a stream the peer has already reset, so a late answer cannot throw.
import type { ServerHttp2Stream } from 'node:http2';
import { status } from '@grpc/grpc-js';

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
// Said on refusals only (one of which is an unsupported grpc-encoding), not on every answer.
const REFUSAL_HEADERS = { ...RESPONSE_HEADERS, 'grpc-accept-encoding': 'identity' };
const OK_TRAILERS = { 'grpc-status': String(status.OK) };

function writable(stream: ServerHttp2Stream): boolean {
  return !stream.destroyed && !stream.closed;
}

// One shared listener rather than a closure per call: this is on the path of every Check.
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** The answer to a unary call: headers, the one message, OK trailers. */
export function sendUnaryResponse(stream: ServerHttp2Stream, framedMessage: Buffer): void {
  if (!writable(stream) || stream.headersSent) return;
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.on('wantTrailers', sendOkTrailers);
  stream.end(framedMessage);
}

/** One message of a streaming response; the response headers go out with the first. */
export function writeStreamMessage(stream: ServerHttp2Stream, framedMessage: Buffer): void {
  if (!writable(stream)) return;
  if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.write(framedMessage);
}

/**
 * Ends the call with a status: as trailers after messages already sent, or as a trailers-only response.
 * Returns false when the call had already been answered or reset (a second answer is dropped).
 */
export function sendStatus(stream: ServerHttp2Stream, code: status, message = ''): boolean {
  if (!writable(stream) || stream.writableEnded) return false;
  const trailers = statusTrailers(code, message);
  if (stream.headersSent) {
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end();
  } else {
    stream.respond({ ...REFUSAL_HEADERS, ...trailers }, { endStream: true });
  }
  return true;
}

/** A plain HTTP answer for a request that is not gRPC at all (wrong method or content-type). */
export function sendHttpError(stream: ServerHttp2Stream, httpStatus: number): void {
  if (!writable(stream) || stream.headersSent) return;
  stream.respond({ ':status': httpStatus }, { endStream: true });
}

function statusTrailers(code: status, message: string): Record<string, string> {
  return message === '' ? { 'grpc-status': String(code) } : { 'grpc-status': String(code), 'grpc-message': percentEncode(message) };
}

/**
 * grpc-message encoding (PROTOCOL-HTTP2.md): printable ASCII stays as it is, every other byte of the UTF-8 form,
 * and '%' itself, is %XX. Not encodeURIComponent: grpc-js decodes with decodeURI, which would leave ':' or '/'
 * escaped in the message a person reads.
 */
export function percentEncode(message: string): string {
  return message.replace(/[^ -$&-~]/gu, (c) => encodeURIComponent(c));
}

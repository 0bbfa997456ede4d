// The lean path for a unary method whose handler works on bytes: exactly one request message in, one
// response message out, within the caller's deadline. This is how Check is served (see server.ts for why).
// A body that is not exactly one message, or a message that does not decode, is the caller's error: it is
// answered INVALID_ARGUMENT with the reason, never INTERNAL (which says the server failed).
import { constants as http2Constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { status } from '@grpc/grpc-js';
import { frameMessage, MessageReader, type FramingError } from './grpc-framing.js';
import { sendStatus, sendUnaryResponse } from './grpc-response.js';
import type { Route } from './grpc-http2-server.js';

/**
 * Turns one serialised request into one serialised response. A GrpcStatusError ends the call with its status;
 * any other failure is INTERNAL.
 */
export type UnaryBytesHandler = (request: Buffer, stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => Promise<Uint8Array>;

/** A refusal a handler answers with a specific gRPC status and a message for the caller. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcStatusError';
  }
}

/** How long a refused call's client may go on sending before its stream is reset: Envoy's delayed-close time. */
const STOP_SENDING_AFTER_MS = 1000;

/** Decodes a request message, refusing bytes that are not one with INVALID_ARGUMENT and the decoder's reason. */
export function decodeRequest<T>(decode: (bytes: Uint8Array) => T, bytes: Uint8Array, what: string): T {
  try {
    return decode(bytes);
  } catch (err) {
    throw new GrpcStatusError(status.INVALID_ARGUMENT, `the request does not decode as a ${what}: ${(err as Error).message}`);
  }
}

export function unaryRoute(handler: UnaryBytesHandler, maxMessageBytes: number): Route {
  return (stream, timeoutMs, headers) => {
    const reader = new MessageReader(maxMessageBytes);
    let request: Buffer | undefined;
    let refused = false;
    const refuse = (error: FramingError) => {
      refused = true;
      sendStatus(stream, error.code, error.message);
      // The answer is complete; tell the peer to stop sending the rest of an oversized body (RFC 9113 8.1:
      // RST_STREAM NO_ERROR after a complete response). Not at once: Node.js 26 drops the response's HEADERS frame
      // when the stream is reset in the same tick, so the reset waits as HTTP/1.1's delayed close does.
      setTimeout(() => stream.close(http2Constants.NGHTTP2_NO_ERROR), STOP_SENDING_AFTER_MS).unref();
    };

    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      const read = reader.push(chunk);
      if (!read.ok) return refuse(read.error);
      for (const message of read.value) {
        if (request !== undefined) return refuse({ code: status.INVALID_ARGUMENT, message: 'more than one request message for a unary method' });
        request = message;
      }
    });
    stream.on('end', () => {
      if (refused) return;
      if (request === undefined || reader.hasPartialMessage) {
        sendStatus(stream, status.INVALID_ARGUMENT, reader.hasPartialMessage ? 'request ended inside a message' : 'request has no message');
        return;
      }
      answer(stream, handler, request, timeoutMs, headers);
    });
  };
}

function answer(stream: ServerHttp2Stream, handler: UnaryBytesHandler, request: Buffer, timeoutMs: number | undefined, headers: IncomingHttpHeaders): void {
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => sendStatus(stream, status.DEADLINE_EXCEEDED, 'deadline exceeded'), timeoutMs);
  const failed = (err: unknown) => {
    clearTimeout(timer);
    if (err instanceof GrpcStatusError) sendStatus(stream, err.code, err.message);
    else sendStatus(stream, status.INTERNAL, 'internal error');
  };
  let response: Promise<Uint8Array>;
  try {
    response = handler(request, stream, headers);
  } catch (err) {
    return failed(err);
  }
  response.then((bytes) => {
    clearTimeout(timer);
    sendUnaryResponse(stream, frameMessage(bytes));
  }, failed);
}

// The lean path for a bidirectional streaming method whose handler works on bytes (ext_proc's Process): request
// messages are handed over one at a time, in order, each once the one before it has been dealt with, so that a
// handler answering asynchronously still answers in order. While messages wait their turn the stream is paused, so
// a peer that sends faster than it is answered holds at most a few messages here, not its whole stream.
import { status } from '@grpc/grpc-js';
import { frameMessage, MessageReader } from './grpc-framing.js';
import { sendStatus, writeStreamMessage } from './grpc-response.js';
import type { Route } from './grpc-http2-server.js';
import { GrpcStatusError } from './unary-route.js';

export interface StreamCall {
  /** Sends one response message. */
  write(message: Uint8Array): void;
}

export interface StreamHandler {
  /**
   * One request message, after every earlier one was dealt with. A GrpcStatusError (sync or async) ends the call
   * with its status; any other failure with INTERNAL.
   */
  message(bytes: Buffer): void | Promise<void>;
  /** The call is over (ended by either side, reset, or out of time): nothing more is read or sent. */
  close?(): void;
}

/** Messages read ahead of the one being handled before the stream is paused. */
const READ_AHEAD = 8;

export function streamRoute(open: (call: StreamCall) => StreamHandler, maxMessageBytes: number): Route {
  return (stream, timeoutMs) => {
    let over = false;
    const call: StreamCall = {
      write(bytes) {
        if (!over) writeStreamMessage(stream, frameMessage(bytes));
      },
    };
    const handler = open(call);
    const queue: Buffer[] = [];
    let busy = false;
    let clientDone = false;

    const finish = (code: status, message = '') => {
      if (over) return;
      over = true;
      queue.length = 0;
      clearTimeout(timer);
      sendStatus(stream, code, message);
      handler.close?.();
    };
    const failed = (err: unknown) => {
      if (err instanceof GrpcStatusError) finish(err.code, err.message);
      else finish(status.INTERNAL, 'internal error');
    };
    const next = () => {
      while (!over && !busy) {
        const bytes = queue.shift();
        if (bytes === undefined) {
          if (clientDone) finish(status.OK);
          else if (stream.isPaused()) stream.resume();
          return;
        }
        let handled: void | Promise<void>;
        try {
          handled = handler.message(bytes);
        } catch (err) {
          return failed(err);
        }
        if (handled instanceof Promise) {
          busy = true;
          handled.then(() => {
            busy = false;
            next();
          }, failed);
        }
      }
    };

    const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish(status.DEADLINE_EXCEEDED, 'deadline exceeded'), timeoutMs);
    const reader = new MessageReader(maxMessageBytes);
    stream.on('data', (chunk: Buffer) => {
      if (over) return;
      const read = reader.push(chunk);
      if (!read.ok) return finish(read.error.code, read.error.message);
      queue.push(...read.value);
      if (queue.length > READ_AHEAD) stream.pause();
      next();
    });
    stream.on('end', () => {
      if (over) return;
      if (reader.hasPartialMessage) return finish(status.INVALID_ARGUMENT, 'request ended inside a message');
      clientDone = true;
      next();
    });
    // Reset by the peer, or closed by the server going away: the handler hears of it once.
    stream.once('close', () => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      handler.close?.();
    });
  };
}

// Serves a service written for @grpc/grpc-js (a ServiceDefinition and its implementation, as registered by
// grpc-health-check's and @grpc/reflection's `addToServer`) on meshward's HTTP/2 server, so that the Check
// fast path, Health and reflection share one port. The call object offers the part of grpc-js's call
// surface those implementations use: `request`, `write`, `end`, the 'data' / 'end' / 'cancelled' events,
// `cancelled`, and the unary callback.
import { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import { status } from '@grpc/grpc-js';
import { frameMessage, MessageReader } from './grpc-framing.js';
import { sendStatus, sendUnaryResponse, writeStreamMessage } from './grpc-response.js';
import type { Route } from './grpc-http2-server.js';

/** A method as grpc-js and @grpc/proto-loader describe it (both libraries' ServiceDefinitions fit). */
export interface ServiceMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  originalName?: string;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
}
export type ServiceMethods = Record<string, ServiceMethod>;

type UnaryCallback = (error: { code?: number; details?: string; message?: string } | null, value?: unknown) => void;
type Handler = (call: AdaptedCall, callback?: UnaryCallback) => void;

/** The routes (by `:path`) that serve a grpc-js style service. */
export function grpcJsServiceRoutes(
  service: ServiceMethods,
  implementation: object,
  maxMessageBytes: number,
): Map<string, Route> {
  const handlers = implementation as Record<string, Handler | undefined>;
  const routes = new Map<string, Route>();
  for (const [name, method] of Object.entries(service)) {
    // Like grpc-js: an implementation may name a method by its proto name or by proto-loader's originalName.
    const fn = handlers[name] ?? (method.originalName ? handlers[method.originalName] : undefined);
    if (fn === undefined) continue;
    routes.set(method.path, (stream, timeoutMs) => serveCall(stream, timeoutMs, method, fn.bind(implementation), maxMessageBytes));
  }
  return routes;
}

class AdaptedCall extends EventEmitter {
  request: unknown;
  cancelled = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly method: ServiceMethod,
  ) {
    super();
  }

  write(message: unknown): boolean {
    const bytes = serialize(this.method, message);
    if (bytes) writeStreamMessage(this.stream, frameMessage(bytes));
    else this.fail(status.INTERNAL, 'response does not serialise');
    return true;
  }

  end(): void {
    sendStatus(this.stream, status.OK);
  }

  /** Ends the call with an error status; the implementation hears 'cancelled'. */
  fail(code: status, message: string): void {
    sendStatus(this.stream, code, message);
    this.cancel();
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

function serialize(method: ServiceMethod, value: unknown): Buffer | undefined {
  try {
    return method.responseSerialize(value as never);
  } catch {
    return undefined;
  }
}

function serveCall(
  stream: ServerHttp2Stream,
  timeoutMs: number | undefined,
  method: ServiceMethod,
  handler: Handler,
  maxMessageBytes: number,
): void {
  const call = new AdaptedCall(stream, method);
  const reader = new MessageReader(maxMessageBytes);
  const fail = (code: status, message: string) => call.fail(code, message);
  const callback: UnaryCallback = (error, value) => {
    if (error) return void sendStatus(stream, error.code ?? status.UNKNOWN, error.details ?? error.message ?? '');
    const bytes = serialize(method, value);
    if (bytes) sendUnaryResponse(stream, frameMessage(bytes));
    else fail(status.INTERNAL, 'response does not serialise');
  };
  // An implementation that throws fails its call, never the server.
  const guarded = (action: () => void) => {
    try {
      action();
    } catch (err) {
      fail(status.INTERNAL, `handler failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const start = () => guarded(() => (method.responseStream ? handler(call) : handler(call, callback)));

  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => fail(status.DEADLINE_EXCEEDED, 'deadline exceeded'), timeoutMs);
    stream.once('close', () => clearTimeout(timer));
  }
  // Closed before the answer was complete: the peer went away or reset the call.
  stream.once('close', () => {
    if (!stream.writableEnded) call.cancel();
  });

  let received = false;
  if (method.requestStream) start();
  stream.on('data', (chunk: Buffer) => {
    if (call.cancelled) return;
    const read = reader.push(chunk);
    if (!read.ok) return fail(read.error.code, read.error.message);
    for (const bytes of read.value) {
      let message: unknown;
      try {
        message = method.requestDeserialize(bytes);
      } catch (err) {
        return fail(status.INVALID_ARGUMENT, `the request does not decode: ${(err as Error).message}`);
      }
      if (method.requestStream) {
        guarded(() => call.emit('data', message));
      } else if (received) {
        return fail(status.INVALID_ARGUMENT, 'more than one request message for a unary method');
      } else {
        call.request = message;
        received = true;
      }
    }
  });
  stream.on('end', () => {
    if (call.cancelled) return;
    if (reader.hasPartialMessage) return fail(status.INVALID_ARGUMENT, 'request ended inside a message');
    if (method.requestStream) guarded(() => call.emit('end'));
    else if (received) start();
    else fail(status.INVALID_ARGUMENT, 'request has no message');
  });
}

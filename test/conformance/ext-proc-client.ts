// An ExternalProcessor client built from the OFFICIAL Envoy protos (shipped by @grpc/grpc-js-xds under deps/), not
// from meshward's trimmed copies in proto/: what it sends and decodes is what Envoy's ext_proc filter does. One
// exchange drives one Process stream as the filter does: a message, then its answer, in order.
import {
  credentials as grpcCredentials,
  loadPackageDefinition,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { OFFICIAL_PROTO_DIRS } from './official-protos.js';

const definition = loadSync('envoy/service/ext_proc/v3/external_processor.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: OFFICIAL_PROTO_DIRS,
});
const envoy = loadPackageDefinition(definition) as unknown as {
  envoy: { service: { ext_proc: { v3: { ExternalProcessor: ServiceClientConstructor } } } };
};

/** The official messages as proto-loader decodes them: snake_case, enums as names, the oneof named. */
export interface HeaderValueOption {
  header: { key: string; value?: string; raw_value?: Buffer };
  append_action?: string;
  append?: { value: boolean };
}
export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}
export interface CommonResponse {
  status?: string;
  header_mutation?: HeaderMutation;
  body_mutation?: { body?: Buffer; mutation?: string };
  clear_route_cache?: boolean;
}
export interface ProcessingResponse {
  response: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers' | 'immediate_response';
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: { status: { code: string }; headers?: HeaderMutation; body?: Buffer; details?: string };
  mode_override?: Record<string, string>;
}

const PROCESS = (envoy.envoy.service.ext_proc.v3.ExternalProcessor.service as unknown as Record<string, { path: string; requestSerialize(m: unknown): Buffer; responseDeserialize(b: Buffer): ProcessingResponse }>).Process!;

/** The method's path, for a call made by hand (test/helpers/raw-grpc.ts). */
export const PROCESS_PATH = PROCESS.path;

/** Messages as one request body: each serialised and framed, so that they can be sent in one write. */
export function framed(messages: unknown[]): Buffer {
  return Buffer.concat(
    messages.map((message) => {
      const bytes = PROCESS.requestSerialize(message);
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(bytes.length, 1);
      return Buffer.concat([prefix, bytes]);
    }),
  );
}

/** A response body's framed messages, decoded. */
export function unframed(body: Buffer): ProcessingResponse[] {
  const answers: ProcessingResponse[] = [];
  for (let at = 0; at < body.length; ) {
    const length = body.readUInt32BE(at + 1);
    answers.push(PROCESS.responseDeserialize(body.subarray(at + 5, at + 5 + length)));
    at += 5 + length;
  }
  return answers;
}

export function externalProcessorClient(address: string, credentials: ChannelCredentials = grpcCredentials.createInsecure(), options: ChannelOptions = {}): Client {
  return new envoy.envoy.service.ext_proc.v3.ExternalProcessor(address, credentials, options);
}

/** One Process stream. */
export class Exchange {
  private readonly call: ClientDuplexStream<unknown, ProcessingResponse>;
  private readonly answers: ProcessingResponse[] = [];
  private readonly waiting: Array<(answer: ProcessingResponse | ServiceError) => void> = [];
  private ended: ServiceError | undefined;
  readonly status: Promise<{ code: number; details: string }>;

  constructor(client: Client) {
    this.call = (client as unknown as { Process(): ClientDuplexStream<unknown, ProcessingResponse> }).Process();
    this.call.on('data', (answer: ProcessingResponse) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(answer);
      else this.answers.push(answer);
    });
    this.call.on('error', (err: ServiceError) => {
      this.ended = err;
      for (const waiter of this.waiting.splice(0)) waiter(err);
    });
    this.status = new Promise((resolve) => this.call.on('status', (s: { code: number; details: string }) => resolve(s)));
  }

  /** Sends a message and resolves with its answer (rejects when the stream ends instead). */
  async ask(message: unknown): Promise<ProcessingResponse> {
    this.call.write(message);
    return this.next();
  }

  next(): Promise<ProcessingResponse> {
    const answer = this.answers.shift();
    if (answer) return Promise.resolve(answer);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiting.push((a) => (a instanceof Error ? reject(a) : resolve(a))));
  }

  /** Half-closes, as Envoy does when the request is over, and resolves with the call's status. */
  async end(): Promise<{ code: number; details: string }> {
    this.call.end();
    return this.status;
  }
}

export interface HeadersShape {
  headers: Record<string, string | string[]>;
  endOfStream?: boolean;
  /** Values in `value` rather than `raw_value` (an Envoy with send_header_raw_value off). */
  plainValues?: boolean;
  /** Envoy's request_attributes, e.g. { 'source.address': '192.0.2.7:40312' }. */
  attributes?: Record<string, string | number>;
}

function headerMap(shape: HeadersShape) {
  const headers = Object.entries(shape.headers).flatMap(([key, value]) =>
    (Array.isArray(value) ? value : [value]).map((v) => (shape.plainValues ? { key, value: v } : { key, raw_value: Buffer.from(v, 'latin1') })),
  );
  return { headers: { headers }, end_of_stream: shape.endOfStream ?? false };
}

function attributes(shape: HeadersShape) {
  if (shape.attributes === undefined) return {};
  // google.protobuf.Value's fields keep protobufjs's own (camelCase) names whatever keepCase says.
  const fields = Object.fromEntries(
    Object.entries(shape.attributes).map(([name, value]) => [name, typeof value === 'number' ? { numberValue: value } : { stringValue: value }]),
  );
  return { attributes: { 'envoy.filters.http.ext_proc': { fields } } };
}

export const requestHeaders = (shape: HeadersShape) => ({ request_headers: headerMap(shape), ...attributes(shape) });
export const responseHeaders = (shape: HeadersShape) => ({ response_headers: headerMap(shape), ...attributes(shape) });
export const requestBody = (body: string, endOfStream = true) => ({ request_body: { body: Buffer.from(body), end_of_stream: endOfStream } });
export const responseBody = (body: string, endOfStream = true) => ({ response_body: { body: Buffer.from(body), end_of_stream: endOfStream } });

/** What a HeaderMutation sets, by name (every value, in order), reading whichever field carries the value. */
export function setHeaders(mutation: HeaderMutation | undefined): Record<string, string[]> {
  const set: Record<string, string[]> = {};
  for (const option of mutation?.set_headers ?? []) {
    const value = option.header.raw_value !== undefined ? option.header.raw_value.toString('latin1') : (option.header.value ?? '');
    (set[option.header.key] ??= []).push(value);
  }
  return set;
}

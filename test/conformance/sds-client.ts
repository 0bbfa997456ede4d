// An SDS client built from the OFFICIAL Envoy protos (shipped by @grpc/grpc-js-xds under deps/), not from
// meshward's proto/: it sends what Envoy's SDS subscription sends, and decodes the Secrets as Envoy does.
import { credentials, loadPackageDefinition, type ClientDuplexStream, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { OFFICIAL_PROTO_DIRS, officialProtoRoot } from './official-protos.js';

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

const sds = loadPackageDefinition(
  loadSync('envoy/service/secret/v3/sds.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: OFFICIAL_PROTO_DIRS }),
) as unknown as { envoy: { service: { secret: { v3: { SecretDiscoveryService: ServiceClientConstructor } } } } };

/** The official Secret type, to unpack the google.protobuf.Any resources as Envoy does. */
const secretType = (() => {
  const root = officialProtoRoot();
  root.loadSync('envoy/extensions/transport_sockets/tls/v3/secret.proto', { keepCase: true });
  root.resolveAll();
  return root.lookupType('envoy.extensions.transport_sockets.tls.v3.Secret');
})();

export interface DataSource {
  inline_bytes?: Buffer;
  inline_string?: string;
  filename?: string;
}

export interface Secret {
  name: string;
  tls_certificate?: { certificate_chain: DataSource; private_key: DataSource };
  validation_context?: { trusted_ca: DataSource };
}

export interface DiscoveryResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: Secret[];
}

interface RawResponse {
  version_info?: string;
  type_url?: string;
  nonce?: string;
  resources?: Array<{ type_url: string; value: Buffer }>;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: { id: string; cluster?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

function unpack(raw: RawResponse): DiscoveryResponse {
  return {
    version_info: raw.version_info ?? '',
    type_url: raw.type_url ?? '',
    nonce: raw.nonce ?? '',
    resources: (raw.resources ?? []).map((any) => {
      if (any.type_url !== SECRET_TYPE_URL) throw new Error(`a resource of type ${any.type_url}`);
      return secretType.toObject(secretType.decode(any.value), { oneofs: true }) as Secret;
    }),
  };
}

export function sdsClient(target: string): Client {
  return new sds.envoy.service.secret.v3.SecretDiscoveryService(target, credentials.createInsecure());
}

/** The DiscoveryRequest Envoy sends first on an SDS stream for `names`. */
export function firstRequest(names: string[]): DiscoveryRequest {
  return { node: { id: 'envoy-test', cluster: 'test' }, resource_names: names, type_url: SECRET_TYPE_URL };
}

/** A StreamSecrets call, read one response at a time. */
export class SecretsStream {
  private readonly call: ClientDuplexStream<DiscoveryRequest, RawResponse>;
  private readonly queued: DiscoveryResponse[] = [];
  private readonly waiting: Array<{ resolve: (r: DiscoveryResponse) => void; reject: (e: Error) => void }> = [];
  private failure: Error | undefined;

  constructor(client: Client) {
    this.call = (client as unknown as { StreamSecrets(): ClientDuplexStream<DiscoveryRequest, RawResponse> }).StreamSecrets();
    this.call.on('data', (raw: RawResponse) => {
      const response = unpack(raw);
      const next = this.waiting.shift();
      if (next) next.resolve(response);
      else this.queued.push(response);
    });
    this.call.on('error', (err: Error) => {
      this.failure = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  send(request: DiscoveryRequest): void {
    this.call.write(request);
  }

  /** The next response on the stream (bounded: a server that never answers fails the test, never hangs it). */
  next(timeoutMs = 15_000): Promise<DiscoveryResponse> {
    const queued = this.queued.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SDS response within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** The status the call ended with. */
  ended(): Promise<Error> {
    if (this.failure) return Promise.resolve(this.failure);
    return new Promise((resolve) => this.call.once('error', resolve));
  }

  close(): void {
    this.call.cancel();
  }
}

/** FetchSecrets, the unary form. */
export function fetchSecrets(client: Client, request: DiscoveryRequest): Promise<DiscoveryResponse> {
  return new Promise((resolve, reject) =>
    (client as unknown as { FetchSecrets(r: DiscoveryRequest, o: object, cb: (e: Error | null, r?: RawResponse) => void): void }).FetchSecrets(
      request,
      { deadline: Date.now() + 5_000 },
      (err, raw) => (err ? reject(err) : resolve(unpack(raw!))),
    ),
  );
}

/** DeltaSecrets: resolves with the status it ends with. */
export function deltaSecrets(client: Client): Promise<Error & { code?: number; details?: string }> {
  const call = (client as unknown as { DeltaSecrets(): ClientDuplexStream<object, unknown> }).DeltaSecrets();
  call.write({ node: { id: 'envoy-test' }, type_url: SECRET_TYPE_URL, resource_names_subscribe: ['default'] });
  return new Promise((resolve) => {
    call.on('data', () => undefined);
    call.on('error', resolve);
  });
}

export function bytesOf(source: DataSource | undefined): string {
  if (source?.inline_bytes) return Buffer.from(source.inline_bytes).toString();
  return source?.inline_string ?? '';
}

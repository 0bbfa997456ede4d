// Clients built from the OFFICIAL Envoy protos (shipped by @grpc/grpc-js-xds under deps/), not from meshward's
// own proto/ files: what these clients send and decode is what a real Envoy sends and decodes.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { credentials as grpcCredentials, loadPackageDefinition, type ChannelCredentials, type ChannelOptions, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };

const envoyDefinition = loadSync('envoy/service/auth/v3/external_auth.proto', {
  ...LOADER_OPTIONS,
  includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d)),
});
const envoy = loadPackageDefinition(envoyDefinition) as unknown as {
  envoy: { service: { auth: { v3: { Authorization: ServiceClientConstructor } } } };
};
const healthPackage = loadPackageDefinition(loadSync(healthProtoPath, LOADER_OPTIONS)) as unknown as {
  grpc: { health: { v1: { Health: ServiceClientConstructor } } };
};
const reflectionProto = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
const reflectionPackage = loadPackageDefinition(loadSync(reflectionProto, LOADER_OPTIONS)) as unknown as {
  grpc: { reflection: { v1: { ServerReflection: ServiceClientConstructor } } };
};

/** The official CheckResponse, as proto-loader decodes it (snake_case, enums as names, oneof named). */
export interface HeaderValueOption {
  header: { key: string; value: string };
  append_action?: string;
  append?: { value: boolean };
}
export interface CheckResponse {
  status: { code: number; message?: string };
  http_response?: 'ok_response' | 'denied_response';
  ok_response?: { headers?: HeaderValueOption[]; headers_to_remove?: string[] };
  denied_response?: { status: { code: string }; headers?: HeaderValueOption[]; body?: string };
}

type Unary = (request: unknown, options: { deadline: number }, callback: (err: Error | null, res: unknown) => void) => void;

function unary<T>(client: Client, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, Unary>)[method]!.call(client, request, { deadline: Date.now() + 5_000 }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    ),
  );
}

export function authorizationClient(address: string, credentials: ChannelCredentials = grpcCredentials.createInsecure(), options: ChannelOptions = {}): Client {
  return new envoy.envoy.service.auth.v3.Authorization(address, credentials, options);
}

export function check(client: Client, request: unknown): Promise<CheckResponse> {
  return unary<CheckResponse>(client, 'Check', request);
}

/** Check with bytes that are not a CheckRequest, sent exactly as given. */
export function checkWithRawBytes(client: Client, bytes: Buffer): Promise<CheckResponse> {
  const method = envoy.envoy.service.auth.v3.Authorization.service.Check!;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method.path,
      () => bytes,
      (b: Buffer) => method.responseDeserialize(b) as CheckResponse,
      {},
      { deadline: Date.now() + 5_000 },
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

export async function healthStatus(address: string, service: string): Promise<string> {
  const client = new healthPackage.grpc.health.v1.Health(address, grpcCredentials.createInsecure());
  try {
    return (await unary<{ status: string }>(client, 'Check', { service })).status;
  } finally {
    client.close();
  }
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** One request on the server reflection stream, as grpcurl sends it (`list`, `describe`). */
export async function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const client = new reflectionPackage.grpc.reflection.v1.ServerReflection(address, grpcCredentials.createInsecure());
  try {
    const stream = (client as unknown as { ServerReflectionInfo: () => NodeJS.ReadWriteStream & { end(): void; write(m: unknown): void } }).ServerReflectionInfo();
    const response = new Promise<ReflectionResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write(request);
    stream.end();
    return await response;
  } finally {
    client.close();
  }
}

export interface EnvoyRequestShape {
  principal?: string;
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  id?: string;
  /** Send the headers as `header_map` (Envoy's encode_raw_headers) instead of the `headers` map. */
  asHeaderMap?: boolean;
}

/** A CheckRequest as Envoy's HTTP ext_authz filter fills it in. */
export function envoyCheckRequest(shape: EnvoyRequestShape = {}): unknown {
  const method = shape.method ?? 'GET';
  const path = shape.path ?? '/api/orders/1';
  const host = shape.host ?? 'orders';
  const headers = { ':authority': host, ':method': method, ':path': path, ':scheme': 'https', 'user-agent': 'curl/8', ...shape.headers };
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '10.0.0.7', port_value: 40312 } },
        ...(shape.principal ? { principal: shape.principal } : {}),
      },
      destination: { address: { socket_address: { address: '10.0.0.9', port_value: 8080 } } },
      request: {
        time: { seconds: '1700000000' },
        http: {
          id: shape.id ?? '11111111-2222-3333-4444-555555555555',
          method,
          path,
          host,
          scheme: 'https',
          protocol: 'HTTP/2',
          ...(shape.asHeaderMap
            ? { header_map: { headers: Object.entries(headers).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })) } }
            : { headers }),
        },
      },
      context_extensions: { virtual_host: 'orders' },
    },
  };
}

export function headerValue(options: HeaderValueOption[] | undefined, key: string): string | undefined {
  return options?.find((o) => o.header.key === key)?.header.value;
}

// A RateLimitService client built from the OFFICIAL Envoy protos (shipped by @grpc/grpc-js-xds under deps/), not
// from meshward's trimmed copies in proto/: what it sends and decodes is what Envoy's ratelimit filter does.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { credentials, loadPackageDefinition, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

const definition = loadSync('envoy/service/ratelimit/v3/rls.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d)),
});
const envoy = loadPackageDefinition(definition) as unknown as {
  envoy: { service: { ratelimit: { v3: { RateLimitService: ServiceClientConstructor } } } };
};

/** The official RateLimitResponse, as proto-loader decodes it (snake_case, enums as names, defaults filled in). */
export interface DescriptorStatus {
  code: 'UNKNOWN' | 'OK' | 'OVER_LIMIT';
  current_limit: { name: string; requests_per_unit: number; unit: string } | null;
  limit_remaining: number;
  duration_until_reset: { seconds: string; nanos: number } | null;
}
export interface RateLimitResponse {
  overall_code: 'UNKNOWN' | 'OK' | 'OVER_LIMIT';
  statuses: DescriptorStatus[];
  response_headers_to_add: Array<{ key: string; value: string }>;
}

export type Entries = Record<string, string> | Array<[string, string]>;

export interface RateLimitRequestShape {
  domain: string;
  /** One descriptor per element: its entries in order. */
  descriptors: Entries[];
  hits_addend?: number;
  /** A per-descriptor override (RateLimitOverride), by descriptor index. */
  overrides?: Record<number, { requests_per_unit: number; unit: string }>;
}

export function rateLimitClient(address: string): Client {
  return new envoy.envoy.service.ratelimit.v3.RateLimitService(address, credentials.createInsecure());
}

export function shouldRateLimit(client: Client, shape: RateLimitRequestShape): Promise<RateLimitResponse> {
  const request = {
    domain: shape.domain,
    descriptors: shape.descriptors.map((entries, i) => ({
      entries: (Array.isArray(entries) ? entries : Object.entries(entries)).map(([key, value]) => ({ key, value })),
      ...(shape.overrides?.[i] ? { limit: shape.overrides[i] } : {}),
    })),
    ...(shape.hits_addend === undefined ? {} : { hits_addend: shape.hits_addend }),
  };
  type Unary = (r: unknown, o: { deadline: number }, cb: (err: Error | null, res: RateLimitResponse) => void) => void;
  return new Promise((resolve, reject) =>
    (client as unknown as { ShouldRateLimit: Unary }).ShouldRateLimit(request, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

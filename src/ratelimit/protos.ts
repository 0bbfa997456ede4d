// The wire types of ShouldRateLimit, from meshward's own wire-compatible .proto files in proto/ (trimmed copies of
// Envoy's; test/conformance proves them against the official ones). protobufjs directly, as for ext_authz's Check:
// its generated decoders yield messages read in place, with no per-call object conversion.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { loadSync as loadPackageDefinition, type PackageDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

/** proto/ at the package root; the same relative place from src/ (tests) and dist/ (the CLI). */
const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const RLS_PROTO = 'envoy/service/ratelimit/v3/rls.proto';
export const RATE_LIMIT_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';
export const SHOULD_RATE_LIMIT_PATH = `/${RATE_LIMIT_SERVICE}/ShouldRateLimit`;

export interface RateLimitTypes {
  RateLimitRequest: protobuf.Type;
  RateLimitResponse: protobuf.Type;
}

export function loadRateLimitTypes(): RateLimitTypes {
  const root = new protobuf.Root();
  // google/protobuf/* resolve to protobufjs's bundled well-known types; everything else lives in proto/.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  root.loadSync(RLS_PROTO);
  root.resolveAll();
  return {
    RateLimitRequest: root.lookupType('envoy.service.ratelimit.v3.RateLimitRequest'),
    RateLimitResponse: root.lookupType('envoy.service.ratelimit.v3.RateLimitResponse'),
  };
}

/** Every service this server offers, as descriptors for server reflection. */
export function loadReflectedServices(): PackageDefinition {
  // Relative names, so that reflection clients see `health/v1/health.proto`, not a path on this machine.
  const healthRoot = resolve(healthProtoPath, '../../..');
  return loadPackageDefinition([RLS_PROTO, 'health/v1/health.proto'], { includeDirs: [PROTO_DIR, healthRoot] });
}

// The wire types of ShouldRateLimit, from meshward's trimmed copies of Envoy's .proto files in proto/
// (grpc/proto-files.ts); test/conformance proves them against the official ones.
import type protobuf from 'protobufjs';
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadProtoTypes, reflectedServices } from '../grpc/index.js';

const RLS_PROTO = 'envoy/service/ratelimit/v3/rls.proto';
export const RATE_LIMIT_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';
export const SHOULD_RATE_LIMIT_PATH = `/${RATE_LIMIT_SERVICE}/ShouldRateLimit`;

export interface RateLimitTypes {
  RateLimitRequest: protobuf.Type;
  RateLimitResponse: protobuf.Type;
}

export function loadRateLimitTypes(): RateLimitTypes {
  return loadProtoTypes(RLS_PROTO, {
    RateLimitRequest: 'envoy.service.ratelimit.v3.RateLimitRequest',
    RateLimitResponse: 'envoy.service.ratelimit.v3.RateLimitResponse',
  });
}

/** Every service this server offers, as descriptors for server reflection. */
export function loadReflectedServices(): PackageDefinition {
  return reflectedServices(RLS_PROTO);
}

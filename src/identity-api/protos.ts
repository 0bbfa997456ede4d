// The wire types of the two identity APIs, from meshward's proto/: Envoy's SecretDiscoveryService (a
// wire-compatible subset of Envoy's protos, proven against the official ones in test/conformance) and the SPIFFE
// Workload API (the specification's workload.proto). Loaded with proto-loader: these are long-lived streams, not
// a hot path, so grpc-js's own server and codecs serve them.
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { packagePath } from '../package-root.js';

const PROTO_DIR = packagePath('proto');

// Field names as in the .proto files; absent scalars read as their defaults, so a request is read without checks
// for undefined; a oneof names its member.
const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

export function secretDiscoveryService(): ServiceDefinition {
  // secret.proto is loaded too, so that a Secret packed in a google.protobuf.Any (`@type`) is encoded from an object.
  const definition = loadSync(['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'], LOADER_OPTIONS);
  return definition['envoy.service.secret.v3.SecretDiscoveryService'] as ServiceDefinition;
}

export function workloadApiService(): ServiceDefinition {
  return loadSync('spiffe/workload/workload.proto', LOADER_OPTIONS).SpiffeWorkloadAPI as ServiceDefinition;
}

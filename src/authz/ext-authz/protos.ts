// The wire types of the Check API, from meshward's own wire-compatible .proto files in proto/.
// protobufjs is used directly (not through @grpc/proto-loader's object conversion) because Check is the hot
// path: its generated decoder yields messages whose fields are read in place, with no per-call toObject pass.
import { resolve } from 'node:path';
import protobuf from 'protobufjs';
import { loadSync as loadPackageDefinition, type PackageDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { packagePath } from '../../package-root.js';

/** proto/ at the package root. */
export const PROTO_DIR = `${packagePath('proto')}/`;

export const CHECK_PROTO = 'envoy/service/auth/v3/external_auth.proto';
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
export const CHECK_METHOD_PATH = `/${AUTHORIZATION_SERVICE}/Check`;

export interface CheckTypes {
  CheckRequest: protobuf.Type;
  CheckResponse: protobuf.Type;
}

export function loadCheckTypes(): CheckTypes {
  const root = new protobuf.Root();
  // google/protobuf/* resolve to protobufjs's bundled well-known types; everything else lives in proto/.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  root.loadSync(CHECK_PROTO);
  root.resolveAll();
  return {
    CheckRequest: root.lookupType('envoy.service.auth.v3.CheckRequest'),
    CheckResponse: root.lookupType('envoy.service.auth.v3.CheckResponse'),
  };
}

/** Every service this server offers, as descriptors for server reflection. */
export function loadReflectedServices(): PackageDefinition {
  // Relative names, so that reflection clients see `health/v1/health.proto`, not a path on this machine.
  const healthRoot = resolve(healthProtoPath, '../../..');
  return loadPackageDefinition([CHECK_PROTO, 'health/v1/health.proto'], { includeDirs: [PROTO_DIR, healthRoot] });
}

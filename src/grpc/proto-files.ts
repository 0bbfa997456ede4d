// meshward's .proto files (proto/: its own APIs and trimmed, wire-compatible copies of Envoy's), loaded for the
// lean gRPC paths. protobufjs directly rather than through @grpc/proto-loader's object conversion: its generated
// decoders yield messages whose fields are read in place, with no per-call toObject pass.
import { resolve } from 'node:path';
import protobuf from 'protobufjs';
import { loadSync as loadPackageDefinition, type PackageDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { packagePath } from '../package-root.js';

const PROTO_DIR = `${packagePath('proto')}/`;

/** The message types named in `types` (a local name for each full name), from `file` in proto/ and its imports. */
export function loadProtoTypes<N extends string>(file: string, types: Record<N, string>): Record<N, protobuf.Type> {
  const root = new protobuf.Root();
  // google/protobuf/* resolve to protobufjs's bundled well-known types; everything else lives in proto/.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  root.loadSync(file);
  root.resolveAll();
  return Object.fromEntries(Object.entries<string>(types).map(([name, fullName]) => [name, root.lookupType(fullName)])) as Record<N, protobuf.Type>;
}

/** A server's services (`file` in proto/) and grpc.health.v1.Health, as descriptors for server reflection. */
export function reflectedServices(file: string): PackageDefinition {
  // Relative names, so that reflection clients see `health/v1/health.proto`, not a path on this machine.
  const healthRoot = resolve(healthProtoPath, '../../..');
  return loadPackageDefinition([file, 'health/v1/health.proto'], { includeDirs: [PROTO_DIR, healthRoot] });
}

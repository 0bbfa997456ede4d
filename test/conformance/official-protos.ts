// Envoy's OFFICIAL protos, as @grpc/grpc-js-xds ships them under deps/: what the conformance clients and checks are
// built from, never meshward's own proto/.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** Include directories for @grpc/proto-loader. */
export const OFFICIAL_PROTO_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d));

/**
 * A protobufjs root that finds imports in the official protos; google/protobuf/descriptor.proto (which the
 * annotations import) in protobufjs's own directory, and the other well-known types among protobufjs's bundled ones.
 */
export function officialProtoRoot(): protobuf.Root {
  const dirs = [...OFFICIAL_PROTO_DIRS, dirname(require.resolve('protobufjs/package.json'))];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => dirs.map((dir) => join(dir, target)).find((candidate) => existsSync(candidate)) ?? target;
  return root;
}

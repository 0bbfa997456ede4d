// The wire types of the Check API, from meshward's own wire-compatible .proto files in proto/ (grpc/proto-files.ts).
import type protobuf from 'protobufjs';
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadProtoTypes, reflectedServices } from '../../grpc/proto-files.js';

const CHECK_PROTO = 'envoy/service/auth/v3/external_auth.proto';
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
export const CHECK_METHOD_PATH = `/${AUTHORIZATION_SERVICE}/Check`;

export interface CheckTypes {
  CheckRequest: protobuf.Type;
  CheckResponse: protobuf.Type;
}

export function loadCheckTypes(): CheckTypes {
  return loadProtoTypes(CHECK_PROTO, { CheckRequest: 'envoy.service.auth.v3.CheckRequest', CheckResponse: 'envoy.service.auth.v3.CheckResponse' });
}

/** Every service this server offers, as descriptors for server reflection. */
export function loadReflectedServices(): PackageDefinition {
  return reflectedServices(CHECK_PROTO);
}

// The wire types of Envoy's ext_proc API, from meshward's trimmed copies of Envoy's .proto files in proto/
// (grpc/proto-files.ts); test/conformance proves them against the official ones.
import type protobuf from 'protobufjs';
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadProtoTypes, reflectedServices } from '../grpc/index.js';

const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';
export const EXTERNAL_PROCESSOR_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const PROCESS_METHOD_PATH = `/${EXTERNAL_PROCESSOR_SERVICE}/Process`;

export interface ExtProcTypes {
  ProcessingRequest: protobuf.Type;
  ProcessingResponse: protobuf.Type;
}

export function loadExtProcTypes(): ExtProcTypes {
  return loadProtoTypes(EXT_PROC_PROTO, {
    ProcessingRequest: 'envoy.service.ext_proc.v3.ProcessingRequest',
    ProcessingResponse: 'envoy.service.ext_proc.v3.ProcessingResponse',
  });
}

/** Every service this server offers, as descriptors for server reflection. */
export function loadReflectedServices(): PackageDefinition {
  return reflectedServices(EXT_PROC_PROTO);
}

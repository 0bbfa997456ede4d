import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// proto/ sits at the package root; this file is at src/ca (tests) or dist/ca (built), two levels below it.
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

export interface CaServiceDefinition {
  service: grpc.ServiceDefinition;
  client: grpc.ServiceClientConstructor;
}

let cached: CaServiceDefinition | undefined;

export function caService(): CaServiceDefinition {
  if (cached) return cached;
  const definition = protoLoader.loadSync('meshward/ca/v1/ca.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: false,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    meshward: { ca: { v1: { CertificateAuthority: grpc.ServiceClientConstructor } } };
  };
  const client = pkg.meshward.ca.v1.CertificateAuthority;
  cached = { service: client.service, client };
  return cached;
}

export interface BundleMessage {
  trustDomain: string;
  x509Authorities: Buffer[];
  pem: string;
  sequence: number;
}

export interface SignRequestMessage {
  csr: Buffer;
  ttlSeconds: number;
  joinToken: string;
  spiffeId: string;
}

export interface SignResponseMessage {
  spiffeId: string;
  certChain: Buffer[];
  certChainPem: string;
  bundle: BundleMessage;
  serial: string;
  notAfterUnix: number;
  notice: string;
}

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { packagePath } from '../package-root.js';

// proto/ sits at the package root.
export const PROTO_ROOT = packagePath('proto');

export interface CaServiceDefinition {
  service: grpc.ServiceDefinition;
  client: grpc.ServiceClientConstructor;
}

export const CA_SERVICE = 'meshward.ca.v1.CertificateAuthority';
const CA_PROTO = 'meshward/ca/v1/ca.proto';

let cached: CaServiceDefinition | undefined;

export function caService(): CaServiceDefinition {
  if (cached) return cached;
  const definition = protoLoader.loadSync(CA_PROTO, {
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

/** The message types, for the server's lean path: decoded and encoded in place, no per-call object conversion. */
export interface CaWireTypes {
  SignRequest: protobuf.Type;
  GetBundleRequest: protobuf.Type;
  SignResponse: protobuf.Type;
  Bundle: protobuf.Type;
}

export function caWireTypes(): CaWireTypes {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => `${PROTO_ROOT}/${target}`;
  root.loadSync(CA_PROTO);
  root.resolveAll();
  const type = (name: string) => root.lookupType(`meshward.ca.v1.${name}`);
  return { SignRequest: type('SignRequest'), GetBundleRequest: type('GetBundleRequest'), SignResponse: type('SignResponse'), Bundle: type('Bundle') };
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

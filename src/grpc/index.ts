// A lean gRPC server on Node's http2: the fast path for meshward's hot RPCs (ext_authz Check, CA Sign), with
// grpc-js-style services (Health, reflection, streams) adapted onto the same port.
export { DEFAULT_MAX_MESSAGE_BYTES, frameMessage, MessageReader } from './grpc-framing.js';
export { GrpcHttp2Server, verifiedPeerCertificate, type GrpcHttp2ServerOptions, type Route, type ServerTls } from './grpc-http2-server.js';
export { sendStatus } from './grpc-response.js';
export { decodeRequest, GrpcStatusError, unaryRoute, type UnaryBytesHandler } from './unary-route.js';
export { streamRoute, type StreamCall, type StreamHandler } from './stream-route.js';
export { hostGrpcService, type GrpcServiceHost, type GrpcServiceHostOptions, type GrpcServiceListen } from './grpc-service-host.js';
export { grpcServerOf, readTlsFiles, type TlsFiles } from './server-tls.js';
export { loadProtoTypes, reflectedServices } from './proto-files.js';

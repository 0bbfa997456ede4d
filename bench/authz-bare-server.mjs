// The baseline for bench/authz-throughput.mjs: a bare @grpc/grpc-js server with the same Authorization
// service (meshward's proto/ files) that answers every Check OK without doing any work.
// Prints {"address":"127.0.0.1:PORT"} on stdout once it listens.
import { Server, ServerCredentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO_DIR = new URL('../proto/', import.meta.url).pathname;
const definition = loadSync('envoy/service/auth/v3/external_auth.proto', { includeDirs: [PROTO_DIR] });
const { Authorization } = loadPackageDefinition(definition).envoy.service.auth.v3;

const server = new Server();
server.addService(Authorization.service, { Check: (_call, callback) => callback(null, { status: { code: 0 } }) });
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ address: `127.0.0.1:${port}` })}\n`);
});
process.once('SIGTERM', () => server.forceShutdown());

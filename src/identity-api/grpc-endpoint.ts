import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { formatSocketAddress, type SocketAddress } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { bindPrivateSocket, type PrivateSocket } from './private-socket.js';

// One gRPC server on a Unix socket (made private, see private-socket.ts) or a loopback port, without TLS: the
// socket's permissions, or the host's own users, are who can call it.

export interface GrpcService {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface GrpcEndpoint {
  /** unix:PATH, or HOST:PORT with the port bound. */
  address: string;
  /** Ends every open stream (clients reconnect to the next process) and removes the socket file. */
  close(): void | Promise<void>;
}

export async function startGrpcEndpoint(address: SocketAddress, gid: number | undefined, services: GrpcService[], logger: Logger): Promise<GrpcEndpoint> {
  const server = new Server();
  for (const { definition, implementation } of services) server.addService(definition, implementation);
  const bind = (target: string) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(target, ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot listen on ${target}: ${err.message}`)) : resolve(port))),
    );
  let socket: PrivateSocket | undefined;
  try {
    if ('path' in address) {
      socket = await bindPrivateSocket(address.path, async (temp) => void (await bind(`unix:${temp}`)), { ...(gid !== undefined ? { gid } : {}), logger });
    } else {
      address = { host: address.host, port: await bind(formatSocketAddress(address)) };
    }
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  return {
    address: formatSocketAddress(address),
    close: async () => {
      server.forceShutdown();
      await socket?.remove();
    },
  };
}

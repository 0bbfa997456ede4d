// What every meshward gRPC service process puts around its routes (meshward authz, ratelimit, extproc):
// grpc.health.v1.Health and server reflection on the same port, the listener, and optionally the admin listener
// (/healthz, /readyz, /metrics). On close, Health and /readyz say "not serving" while calls in flight finish.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReflectionService } from '@grpc/reflection';
import type { PackageDefinition } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { AdminServer } from '../telemetry/index.js';
import type { GrpcHttp2Server } from './grpc-http2-server.js';

/** Where a gRPC service process listens: every `meshward authz | ratelimit | extproc` takes these. */
export interface GrpcServiceListen {
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  /** The admin listener: /healthz, /readyz, /metrics. None when absent. */
  admin?: { host: string; port: number };
}

export interface GrpcServiceHostOptions extends GrpcServiceListen {
  /** The server, its routes already added. */
  server: GrpcHttp2Server;
  /** The service Health reports on (besides the server as a whole, ""). */
  service: string;
  /** Every service on the port, for server reflection. */
  reflected: PackageDefinition;
  metrics(req: IncomingMessage, res: ServerResponse): void;
}

export interface GrpcServiceHost {
  /** host:port as bound, `[v6]:port` for IPv6. */
  readonly address: string;
  /** The admin listener's host:port as bound, when there is one. */
  readonly adminAddress?: string;
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then closes what is left; the admin listener last. */
  close(graceMs: number): Promise<void>;
}

export async function hostGrpcService(options: GrpcServiceHostOptions): Promise<GrpcServiceHost> {
  const { server } = options;
  const health = new HealthImplementation({ '': 'SERVING', [options.service]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(options.reflected).addToServer(server);
  let closing = false;
  const address = formatAddress(await server.listen(options.host, options.port));
  let admin: AdminServer | undefined;
  let adminAddress: string | undefined;
  if (options.admin) {
    // Serving from the start (the component is ready once it listens), so ready means: not shutting down.
    admin = new AdminServer(options.admin.host, options.admin.port, { ready: () => !closing, metrics: options.metrics });
    try {
      adminAddress = formatAddress(await admin.listen());
    } catch (err) {
      await server.close(0);
      throw err;
    }
  }
  return {
    address,
    ...(adminAddress === undefined ? {} : { adminAddress }),
    close: async (graceMs) => {
      closing = true;
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(options.service, 'NOT_SERVING');
      await server.close(graceMs);
      await admin?.close();
    },
  };
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

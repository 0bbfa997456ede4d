// The sidecar's identity served to other local processes: Envoy over SDS, SPIFFE-aware programs over the SPIFFE
// Workload API. Loaded by the sidecar only when its config asks for either (it brings in gRPC).
import { FieldError, type SidecarConfig, type SocketEndpointConfig, formatSocketAddress, groupId } from '../config/index.js';
import type { IdentitySnapshot } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';
import { startGrpcEndpoint, type GrpcEndpoint, type GrpcService } from './grpc-endpoint.js';
import { IdentityFeed } from './identity-feed.js';
import { secretDiscoveryService, workloadApiService } from './protos.js';
import { secretDiscoveryImplementation } from './sds-service.js';
import { workloadApiImplementation } from './workload-api-service.js';

export interface ServedIdentity {
  addresses: { sds?: string; workloadApi?: string };
  /** The sidecar's identity now: pushed to every open stream when it changed. */
  update(snapshot: IdentitySnapshot): void;
  close(): Promise<void>;
}

type Field = 'sds' | 'workloadApi';

/**
 * Binds the sockets `sds` and `workloadApi` name (one server when both name the same socket, as on SPIRE's agent).
 * Streams opened before the identity is held get their first message when it is. Throws a FieldError naming the
 * field when a socket cannot be had.
 */
export async function serveIdentity(config: Pick<SidecarConfig, 'sds' | 'workloadApi' | 'trustDomain'>, logger: Logger): Promise<ServedIdentity> {
  const feed = new IdentityFeed();
  const services: Record<Field, () => GrpcService> = {
    sds: () => ({ definition: secretDiscoveryService(), implementation: secretDiscoveryImplementation(feed, config.trustDomain, logger) }),
    workloadApi: () => ({ definition: workloadApiService(), implementation: workloadApiImplementation(feed, config.trustDomain, logger) }),
  };
  const bySocket = new Map<string, { endpoint: SocketEndpointConfig; fields: Field[] }>();
  for (const field of ['sds', 'workloadApi'] as const) {
    const endpoint = config[field];
    if (endpoint === undefined) continue;
    const key = formatSocketAddress(endpoint.listen);
    const shared = bySocket.get(key);
    if (shared) shared.fields.push(field);
    else bySocket.set(key, { endpoint, fields: [field] });
  }
  const endpoints: GrpcEndpoint[] = [];
  const addresses: ServedIdentity['addresses'] = {};
  const close = async () => {
    await Promise.all(endpoints.map((e) => e.close()));
  };
  try {
    for (const { endpoint, fields } of bySocket.values()) {
      const field = fields[0]!;
      const gid = endpoint.group === undefined ? undefined : groupId(endpoint.group);
      if (typeof gid === 'string') throw new FieldError([field, 'group'], gid);
      const served = await startGrpcEndpoint(endpoint.listen, gid, fields.map((f) => services[f]()), logger).catch((err: unknown) => {
        throw new FieldError([field, 'listen'], (err as Error).message);
      });
      endpoints.push(served);
      for (const f of fields) addresses[f] = served.address;
      if (!('path' in endpoint.listen)) {
        logger.warn({ address: served.address }, 'SDS on a TCP port: every local user can connect and read the private key; a unix: socket keeps it to its owner');
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { addresses, update: (snapshot) => feed.publish(snapshot), close };
}

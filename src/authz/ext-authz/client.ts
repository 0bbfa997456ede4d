// The sidecar's ext_authz client: asks a remote server (`extAuthz.address`) Envoy's Authorization/Check
// instead of deciding in process. One gRPC channel per client, reused by every Check; the codecs are the
// project's protobufjs types, resolved once. A Check never throws: whatever goes wrong is an `error` verdict
// and the caller applies its failOpen setting, as Envoy's failure_mode_allow does.
import { Client, credentials, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { createLogger, type Logger } from '../../telemetry/index.js';
import type { AuthzRequest } from '../types.js';
import { buildCheckRequest, type CheckExtras, type CheckRequestFields } from './check-request-builder.js';
import { CHECK_METHOD_PATH, loadCheckTypes, type CheckTypes } from './protos.js';
import { toRemoteVerdict, type ReceivedCheckResponse, type RemoteVerdict } from './remote-verdict.js';

export type { CheckExtras } from './check-request-builder.js';
export type { RemoteVerdict } from './remote-verdict.js';

export interface ExtAuthzClientOptions {
  /** host:port, `[v6]:port` for IPv6. */
  address: string;
  /** Per Check deadline. */
  timeoutMs: number;
  logger?: Logger;
}

const CHANNEL_OPTIONS: ChannelOptions = {
  // grpc-js waits 1 s after a failed connection and backs off up to 120 s, so after an outage of a few minutes
  // every Check would keep failing for up to two minutes after the server is back. Retrying one connection
  // every second at most costs nothing and brings Checks back within about a second.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  // grpc-js otherwise tunnels through a proxy named in grpc_proxy/https_proxy/http_proxy, variables a pod often
  // has for its egress; the authorization server is asked directly, as Envoy asks it.
  'grpc.enable_http_proxy': 0,
};

export class ExtAuthzClient {
  private readonly client: Client;
  private readonly address: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly serialize: (request: CheckRequestFields) => Buffer;
  private readonly deserialize: (bytes: Buffer) => ReceivedCheckResponse;
  /** Whether the last Check failed: only the first failure of an outage and the recovery are logged, not every Check. */
  private failing = false;
  private closed = false;

  constructor(options: ExtAuthzClientOptions) {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new Error(`ext_authz client: timeoutMs must be a positive number of milliseconds, got ${options.timeoutMs}`);
    }
    this.address = options.address;
    this.timeoutMs = options.timeoutMs;
    this.logger = options.logger ?? createLogger('ext-authz-client');
    const types = loadClientCheckTypes();
    this.serialize = (request) => {
      const bytes = types.CheckRequest.encode(request).finish();
      // grpc-js wants a Buffer: a view on the encoded bytes, not a copy.
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    };
    this.deserialize = (bytes) => types.CheckResponse.decode(bytes) as ReceivedCheckResponse;
    this.client = new Client(options.address, credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  /** Never rejects. */
  check(request: AuthzRequest, extras?: CheckExtras): Promise<RemoteVerdict> {
    if (this.closed) return Promise.resolve({ kind: 'error', reason: `ext_authz client for ${this.address} is closed` });
    return new Promise((resolve) => {
      try {
        this.client.makeUnaryRequest(
          CHECK_METHOD_PATH,
          this.serialize,
          this.deserialize,
          buildCheckRequest(request, extras),
          // waitForReady stays false (the default): with no connection a Check fails at once, not at its deadline.
          { deadline: Date.now() + this.timeoutMs },
          (err: ServiceError | null, response?: ReceivedCheckResponse) => resolve(this.verdict(err, response)),
        );
      } catch (err) {
        // Only an AuthzRequest that breaks its contract gets here (grpc-js reports its own failures, encoding
        // included, through the callback), and a Check must still not reject.
        resolve(this.failed(`the CheckRequest cannot be sent: ${(err as Error).message}`));
      }
    });
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  private verdict(err: ServiceError | null, response: ReceivedCheckResponse | undefined): RemoteVerdict {
    // err.message is grpc-js's "CODE NAME: details", e.g. "14 UNAVAILABLE: No connection established".
    if (err) return this.failed(`Check failed: ${err.message}`);
    if (!response) return this.failed('Check returned no CheckResponse');
    const verdict = toRemoteVerdict(response);
    if (verdict.kind === 'error') return this.failed(`the server's answer cannot be applied: ${verdict.reason}`);
    if (this.failing) {
      this.failing = false;
      this.logger.info({ address: this.address }, 'ext_authz server answering again');
    }
    return verdict;
  }

  private failed(reason: string): RemoteVerdict {
    const full = `ext_authz server ${this.address}: ${reason}`;
    if (!this.failing) {
      this.failing = true;
      this.logger.warn({ address: this.address, reason: full }, 'ext_authz check failed; further failures are not logged until a check succeeds');
    }
    return { kind: 'error', reason: full };
  }
}

/**
 * The Check types with the two fields Envoy sends that proto/ does not declare (meshward's server reads
 * neither): AttributeContext.HttpRequest.protocol (10) and AttributeContext.Peer.certificate (5), so that
 * other ext_authz servers get them as they would from Envoy. Each is added only if proto/ still lacks it.
 */
export function loadClientCheckTypes(): CheckTypes {
  const types = loadCheckTypes();
  const root = types.CheckRequest.root;
  addStringField(root.lookupType('envoy.service.auth.v3.AttributeContext.HttpRequest'), 'protocol', 10);
  addStringField(root.lookupType('envoy.service.auth.v3.AttributeContext.Peer'), 'certificate', 5);
  return types;
}

function addStringField(type: protobuf.Type, name: string, id: number): void {
  if (type.fields[name] === undefined) type.add(new protobuf.Field(name, id, 'string'));
}

import { status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../telemetry/index.js';
import type { IdentityFeed } from './identity-feed.js';
import { SECRET_TYPE_URL, secretsFor } from './sds-secrets.js';
import { SecretStream, type DiscoveryRequest, type DiscoveryResponse } from './sds-stream.js';

// envoy.service.secret.v3.SecretDiscoveryService: StreamSecrets (state of the world, identity changes pushed),
// FetchSecrets (one answer), and DeltaSecrets refused (Envoy uses StreamSecrets unless told api_type DELTA_GRPC).

const DELTA_UNIMPLEMENTED =
  'meshward serves SDS as state of the world (StreamSecrets); incremental xDS (DeltaSecrets) is not implemented: set the sds_config api_type to GRPC';

export function secretDiscoveryImplementation(feed: IdentityFeed, trustDomain: string, logger: Logger): UntypedServiceImplementation {
  let nonces = 0;
  const nextNonce = () => String(++nonces);
  return {
    StreamSecrets(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) {
      const stream = new SecretStream(trustDomain, nextNonce);
      let client: { node?: string; resources?: string[] } = {};
      const send = (response: DiscoveryResponse | undefined) => {
        if (response === undefined) return;
        call.write(response);
        logger.debug({ ...client, version: response.version_info, nonce: response.nonce, sent: response.resources.map((r) => r.name) }, 'SDS: secrets sent');
      };
      const unfollow = feed.follow((snapshot, version) => send(stream.onIdentity(snapshot, version)));
      const end = () => unfollow();
      call.on('cancelled', end);
      call.on('error', end);
      call.on('end', () => {
        end();
        call.end();
      });
      call.on('data', (request: DiscoveryRequest) => {
        const refusal = typeUrlProblem(request.type_url);
        if (refusal) {
          end();
          call.emit('error', { code: status.INVALID_ARGUMENT, details: refusal });
          return;
        }
        client = { node: request.node?.id || client.node, resources: request.resource_names };
        const answer = stream.onRequest(request);
        if (answer.kind === 'nack') {
          logger.warn(
            { ...client, version: request.version_info, nonce: request.response_nonce, error: request.error_detail?.message },
            'SDS: the client rejected the secrets sent (NACK); it keeps the version it had, and the next identity change is pushed',
          );
        } else if (answer.kind === 'stale') {
          logger.debug({ ...client, nonce: request.response_nonce }, 'SDS: a request answering an older response is ignored');
        }
        send(answer.response);
      });
    },

    FetchSecrets(call: ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>, callback: sendUnaryData<DiscoveryResponse>) {
      const refusal = typeUrlProblem(call.request.type_url);
      if (refusal) return callback({ code: status.INVALID_ARGUMENT, details: refusal });
      const current = feed.current;
      if (current === undefined) return callback({ code: status.UNAVAILABLE, details: 'no SVID yet: the sidecar is still getting its identity' });
      callback(null, { version_info: current.version, resources: secretsFor(call.request.resource_names, current.snapshot, trustDomain), type_url: SECRET_TYPE_URL, nonce: '' });
    },

    DeltaSecrets(call: ServerDuplexStream<unknown, unknown>) {
      call.emit('error', { code: status.UNIMPLEMENTED, details: DELTA_UNIMPLEMENTED });
    },
  };
}

/** An empty type_url is taken as the Secret type (the service serves no other); any other type is refused. */
function typeUrlProblem(typeUrl: string): string | undefined {
  if (typeUrl === '' || typeUrl === SECRET_TYPE_URL) return undefined;
  return `this service serves ${SECRET_TYPE_URL} only, not ${typeUrl.slice(0, 200)}`;
}

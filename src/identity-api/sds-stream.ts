import type { IdentitySnapshot } from '../identity/index.js';
import { SECRET_TYPE_URL, secretsFor, type SecretResource } from './sds-secrets.js';

// One StreamSecrets stream, as the xDS protocol's state of the world has it: each request names every resource
// the client wants and answers the last response by its nonce, with the version it now holds (an ACK) or with
// error_detail and the version it kept (a NACK). A request answering an older response is stale and ignored: the
// client will answer the newer one. A response goes out for the first request, for a changed set of names, and for
// every identity change; never again for a version the client already answered (a NACKed version is not sent again:
// the next identity is). Pure: the gRPC call is in sds-service.ts.

/** As proto-loader decodes it: absent fields at their defaults, absent messages null. */
export interface DiscoveryRequest {
  version_info: string;
  node: { id: string; cluster: string } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: SecretResource[];
  type_url: string;
  nonce: string;
}

export interface RequestAnswer {
  /** A request before any response, an ACK or a NACK of the last response, or a stale request (ignored). */
  kind: 'first' | 'ack' | 'nack' | 'stale';
  /** What to send back now, if anything. */
  response?: DiscoveryResponse;
}

export class SecretStream {
  private names: string[] | undefined;
  private identity: { snapshot: IdentitySnapshot; version: string } | undefined;
  private lastNonce: string | undefined;

  constructor(
    private readonly trustDomain: string,
    private readonly nextNonce: () => string,
  ) {}

  onRequest(request: DiscoveryRequest): RequestAnswer {
    if (this.lastNonce !== undefined && request.response_nonce !== this.lastNonce) return { kind: 'stale' };
    const kind = this.lastNonce === undefined ? 'first' : request.error_detail ? 'nack' : 'ack';
    const changed = this.names === undefined || !sameSet(this.names, request.resource_names);
    this.names = [...request.resource_names];
    const response = changed ? this.respond() : undefined;
    return response ? { kind, response } : { kind };
  }

  /** A new identity (the feed passes on changes only): pushed at once once the client has asked for anything. */
  onIdentity(snapshot: IdentitySnapshot, version: string): DiscoveryResponse | undefined {
    this.identity = { snapshot, version };
    return this.names === undefined ? undefined : this.respond();
  }

  /** Undefined while there is no identity yet: the request is answered when it arrives. */
  private respond(): DiscoveryResponse | undefined {
    if (this.identity === undefined || this.names === undefined) return undefined;
    this.lastNonce = this.nextNonce();
    return {
      version_info: this.identity.version,
      resources: secretsFor(this.names, this.identity.snapshot, this.trustDomain),
      type_url: SECRET_TYPE_URL,
      nonce: this.lastNonce,
    };
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((name) => right.has(name));
}

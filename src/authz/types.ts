// The contract between the policy engine and whoever asks it (the ext_authz server, the sidecar's filter chain).
// Transport-neutral: the ext_authz server maps Envoy's CheckRequest onto AuthzRequest, the sidecar maps its
// inbound HTTP request onto it.

export interface AuthzRequest {
  /** The verified SPIFFE ID of the caller; undefined when the caller presented no verified identity. */
  principal?: string;
  /** The caller's IP address (v4 or v6, no port). */
  sourceIp?: string;
  /** The port the request was sent to (matched by `to.ports`). */
  destinationPort?: number;
  method: string;
  /** Host or :authority as received; the engine ignores case and any port. */
  host: string;
  /** The request target as received, query string included; the engine normalises it. */
  path: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
  requestId?: string;
  /** Envoy's `context_extensions`, passed through for policies that want them. */
  contextExtensions?: Readonly<Record<string, string>>;
  /** A verified JWT's claims, set by the JWT filter (never taken from the network); what `jwt.claims.*` conditions read. */
  claims?: Readonly<Record<string, unknown>>;
}

/** Which rule decided, or `default` when none matched and `defaultAction` applied. */
export type RuleRef = string;

export type Decision =
  | { kind: 'allow'; rule: RuleRef; principal?: string; dryRun?: DryRunNote[]; audit?: RuleRef[] }
  | { kind: 'deny'; rule: RuleRef; reason: string; dryRun?: DryRunNote[]; audit?: RuleRef[] }
  /** 401: a present but invalid JWT, or a missing one where the policy requires it. */
  | { kind: 'unauthenticated'; reason: string; challenge: string }
  /** 400: the request cannot be judged safely (a path that does not normalise, a malformed request). */
  | { kind: 'invalid'; reason: string }
  /** 429 */
  | { kind: 'rate_limited'; limit: string; retryAfterSeconds: number };

/** What a dry-run rule would have decided; logged, never enforced. */
export interface DryRunNote {
  rule: RuleRef;
  wouldBe: 'allow' | 'deny';
}

export interface PolicyEngine {
  /**
   * Never throws: any internal error becomes a deny (fail closed). Synchronous when nothing needs I/O (no JWT keys to
   * fetch, no shared counter to ask): a request's decision then costs no promise.
   */
  decide(request: AuthzRequest): Decision | Promise<Decision>;
}

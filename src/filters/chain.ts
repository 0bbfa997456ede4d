import type { AuthzRequest } from '../authz/index.js';
import type { LocalReply } from './local-reply.js';
import type { PeerIdentity } from './peer-identity.js';

// The per-request chain, as data: an array of filters built from config at start-up, run in order. A filter either
// lets the request continue (returns undefined) or answers it (returns a LocalReply), and may record what it
// decided on the context for the forwarder and the audit log. Filters that need no I/O return synchronously, so a
// chain of them costs no promise.

export interface HopDecision {
  outcome: 'allow' | 'deny' | 'unauthenticated' | 'invalid' | 'rate_limited' | 'error';
  /** The deciding rule or limit, or `default`, `error`, `remote`. */
  rule: string;
  dryRun?: ReadonlyArray<{ rule: string; wouldBe: string }>;
  audit?: readonly string[];
}

export interface HopContext {
  /** What the policy sees: method, host, the path as received, headers, the verified principal, source IP. */
  readonly request: AuthzRequest;
  readonly requestId: string;
  /** The W3C trace this request belongs to (the caller's, or one the sidecar started). */
  readonly traceId: string;
  readonly peer: PeerIdentity | undefined;
  /** The request's headers as received, flat [name, value, ...] (Node's rawHeaders), duplicates kept. */
  readonly rawHeaders: readonly string[];
  /** Content-Length as declared, or undefined (none, or chunked). */
  readonly declaredBodyBytes: number | undefined;
  /** Headers the forwarder sets on the upstream request, after removing `removeHeaders`. */
  readonly setHeaders: Array<[string, string]>;
  readonly removeHeaders: string[];
  decision?: HopDecision;
  /** The request body, when a filter of the chain asked for it to be buffered (HttpFilter.requestBody). */
  body?: Buffer;
}

export type FilterResult = LocalReply | undefined;
export type Filter = (ctx: HopContext) => FilterResult | Promise<FilterResult>;

/** Runs the filters in order; the first reply ends the chain. Stays synchronous until a filter returns a promise. */
export function runFilters(filters: readonly Filter[], ctx: HopContext, from = 0): FilterResult | Promise<FilterResult> {
  for (let i = from; i < filters.length; i++) {
    const result = filters[i]!(ctx);
    if (result instanceof Promise) return result.then((r) => (r === undefined ? runFilters(filters, ctx, i + 1) : r));
    if (result !== undefined) return result;
  }
  return undefined;
}

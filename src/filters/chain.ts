import type { AuthzRequest } from '../authz/index.js';
import type { FilterResponse, HttpFilter } from './http-filter.js';
import { replies, type LocalReply } from './local-reply.js';
import type { PeerIdentity } from './peer-identity.js';

// A listener's chain, as data: the filters built from its config at start-up, in order, and what the listener must
// do for them (buffer a body, run a response side). The runtime here is the whole of how a request goes through:
// the request side in list order until a filter answers; the response side in reverse order for the filters whose
// request side ran, on the app's answer and on local replies alike. Filters that need no I/O return synchronously,
// and a chain of them costs no promise: this runs on every request.

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
  /**
   * The request body, when a filter of the chain asked for it to be buffered (HttpFilter.requestBody). A filter may
   * replace it; the forwarder sends what is here, with its content-length.
   */
  body?: Buffer;
  /** Kept by the runtime: how many filters the request side entered (the response side runs on these). */
  filtersEntered: number;
}

export type FilterResult = LocalReply | undefined;

/** Reads the whole request body, up to maxBytes; undefined when it is larger. Rejects when the client goes away. */
export type BodyReader = (maxBytes: number) => Promise<Buffer | undefined>;

export interface ResponseBuffering {
  maxBytes: number;
  /** Over maxBytes: 502, or the answer streams on unchanged (and filters see no body). */
  oversize: 'reply502' | 'pass';
  /** Whether this response is buffered: when any asking filter wants it (one without `when` wants every response). */
  wanted(response: FilterResponse): boolean;
}

export interface Chain {
  readonly filters: readonly HttpFilter[];
  /** How much of a request body is buffered for the filters that read it (the least any asks); undefined: it streams. */
  readonly requestBodyBytes: number | undefined;
  /** Whether any filter has a response side; when none has, the answer streams untouched. */
  readonly hasResponseSide: boolean;
  /** Response body buffering (the least any filter asks; 502 over it if any filter says so); undefined: it streams. */
  readonly responseBody: ResponseBuffering | undefined;
}

export function chainOf(filters: readonly HttpFilter[]): Chain {
  let requestBodyBytes: number | undefined;
  let responseBody: ResponseBuffering | undefined;
  const picks: Array<(response: FilterResponse) => boolean> = [];
  let everyResponse = false;
  for (const filter of filters) {
    if (filter.requestBody) requestBodyBytes = Math.min(requestBodyBytes ?? Infinity, filter.requestBody.maxBytes);
    const asked = filter.responseBody;
    if (asked) {
      if (asked.when === undefined) everyResponse = true;
      else picks.push(asked.when.bind(asked));
      responseBody = {
        maxBytes: Math.min(responseBody?.maxBytes ?? Infinity, asked.maxBytes),
        oversize: responseBody?.oversize === 'reply502' || asked.oversize === 'reply502' ? 'reply502' : 'pass',
        wanted: everyResponse ? () => true : (response) => picks.some((pick) => pick(response)),
      };
    }
  }
  return { filters, requestBodyBytes, hasResponseSide: filters.some((f) => f.onResponse !== undefined), responseBody };
}

/**
 * The request side, from filter `from` on: the first local reply ends it. A filter that asks for the body gets it
 * read first (413 when larger than the chain buffers). Stays synchronous until a filter (or the body) needs a promise.
 */
export function runRequestSide(chain: Chain, ctx: HopContext, readBody: BodyReader, from = 0): FilterResult | Promise<FilterResult> {
  const { filters } = chain;
  for (let i = from; i < filters.length; i++) {
    const filter = filters[i]!;
    if (filter.requestBody !== undefined && ctx.body === undefined) {
      const maxBytes = chain.requestBodyBytes!;
      return readBody(maxBytes).then((body) => {
        if (body === undefined) {
          ctx.filtersEntered = i;
          return replies.tooLarge(ctx.requestId, maxBytes);
        }
        ctx.body = body;
        return runRequestSide(chain, ctx, readBody, i);
      });
    }
    ctx.filtersEntered = i + 1;
    if (filter.onRequest === undefined) continue;
    const result = filter.onRequest(ctx);
    if (result instanceof Promise) return result.then((r) => (r === undefined ? runRequestSide(chain, ctx, readBody, i + 1) : r));
    if (result !== undefined) return result;
  }
  return undefined;
}

/** The response side: the filters whose request side ran, last first. Synchronous unless a filter returns a promise. */
export function runResponseSide(chain: Chain, ctx: HopContext, response: FilterResponse, from = ctx.filtersEntered - 1): void | Promise<void> {
  const { filters } = chain;
  for (let i = from; i >= 0; i--) {
    const filter = filters[i]!;
    if (filter.onResponse === undefined) continue;
    const result = filter.onResponse(ctx, response);
    if (result instanceof Promise) return result.then(() => runResponseSide(chain, ctx, response, i - 1));
  }
  return undefined;
}

/** A local reply as the response side sees it: its body is always there (it is small and already whole). */
export function replyResponse(reply: LocalReply): FilterResponse {
  return { status: reply.status, headers: { 'content-type': 'application/json', ...reply.headers }, body: Buffer.from(reply.body) };
}

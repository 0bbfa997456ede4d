import type { ZodType } from 'zod';
import type { LocalReply } from './local-reply.js';
import type { Logger } from '../telemetry/index.js';
import type { HopContext } from './chain.js';
import type { PolicyFiles } from './authz/policy-files.js';

// The contract every filter of a listener's chain implements (issue 15), built-in or a custom module's
// (`- module: ./my-filter.mjs` exports a FilterFactory as its default export). Envoy's decodeHeaders /
// encodeHeaders in spirit: the request side runs in the order of the listener's `filters:` list and may answer
// early; the response side runs in reverse order, for the filters whose request side ran, on the app's answer and on
// local replies alike (so CORS and security headers are on a 401 too).

/** A response on its way back to the client: the app's, or a local reply. */
export interface FilterResponse {
  status: number;
  /** Lower-case names. A filter changes the response by changing this object. */
  headers: Record<string, string | string[]>;
  /**
   * The whole body, when some filter of the chain asked for it (`responseBody`), and always on a local reply;
   * undefined when the body streams. A filter may replace it (or set one on a streaming answer, whose own body is then
   * dropped); the runtime fixes content-length.
   */
  body?: Buffer;
}

export interface HttpFilter {
  /** The name in the config (`cors`, `apiKey`, ...); a custom module's is its file's. */
  readonly name: string;
  /**
   * Buffer the request body (up to maxBytes; more is 413) before onRequest runs; it is then on ctx.body. Only
   * filters that must read the body ask (`validate`): every other request streams. With several filters asking, the
   * least maxBytes holds (and the listener's limits.maxBodyBytes).
   */
  readonly requestBody?: { maxBytes: number };
  /**
   * Buffer the response body (up to maxBytes) before onResponse runs; over it: `oversize` says what happens (502, or
   * the answer streams on and onResponse sees no body). With several filters asking, the least maxBytes holds, and 502
   * if any says so. A HEAD answer has no body. `when` (given status and headers) picks the responses to buffer, e.g.
   * JSON only, so that a download or an event stream through the same filter still streams (onResponse then sees no
   * body); without it every response is buffered.
   */
  readonly responseBody?: { maxBytes: number; oversize: 'reply502' | 'pass'; when?(response: FilterResponse): boolean };
  /**
   * The request's headers have arrived (and its body, if asked for). Return a LocalReply to answer now (the rest of
   * the chain and the app never see the request), or undefined to let it go on. Changes to the request go through
   * the context (setHeaders / removeHeaders; principal for an authentication filter). Synchronous where no I/O is
   * needed: a chain of synchronous filters costs no promise.
   */
  onRequest?(ctx: HopContext): LocalReply | undefined | Promise<LocalReply | undefined>;
  /**
   * The response's status and headers (and body, if asked for) are known and nothing was sent yet. Runs for every
   * filter whose request side ran, this one's own local reply included. A throw or rejection answers 500 instead.
   */
  onResponse?(ctx: HopContext, response: FilterResponse): void | Promise<void>;
  /**
   * Reads again whatever files the filter keeps in force (SIGHUP); a bad file keeps the last good state. Filters that
   * watch their files reload on change as well.
   */
  reload?(): Promise<void>;
  /** How many reloads put a new file in force, and how many were refused (the policy reload metrics). */
  reloadStats?(): { reloads: number; rejected: number };
  /** Stops whatever the filter started (file watchers, timers, clients). */
  close?(): void | Promise<void>;
}

/** What a filter may use when it is built: where relative paths start, the log, reloads. */
export interface FilterEnvironment {
  /** The config file's directory: relative file paths in a filter's settings start here. */
  readonly configDir: string;
  readonly logger: Logger;
  /** `inbound`, `outbound` or `ingress`; `extproc` for the chain `meshward extproc` runs for Envoy. */
  readonly listener: 'inbound' | 'outbound' | 'ingress' | 'extproc';
  /** True when the listener terminates TLS for its clients (HSTS and the like only make sense there). */
  readonly tls: boolean;
  /** Where decisions are measured (the process's metrics); absent where nothing is measured (`--check-config`). */
  readonly metrics?: FilterMetrics;
  /**
   * The process's policy files, shared by every listener that names one (loaded, watched and reloaded once, by their
   * owner). Absent: a filter loads its policy file itself, and reloads and closes it.
   */
  readonly policies?: PolicyFiles;
}

export interface FilterMetrics {
  /** The time one authorization decision took, failed ones included. */
  recordAuthzLatency(ms: number): void;
  /** A rateLimit filter's Redis store failed or was too slow (meshward_ratelimit_store_errors_total). */
  recordRateLimitStoreError(): void;
}

/**
 * One entry of the registry: the settings' schema (checked at config load, errors name the path) and a builder.
 * A filter is added by writing one file that exports a FilterFactory and one line in the registry.
 */
export interface FilterFactory<Settings = unknown> {
  readonly name: string;
  readonly settings: ZodType<Settings>;
  create(settings: Settings, env: FilterEnvironment): HttpFilter | Promise<HttpFilter>;
}

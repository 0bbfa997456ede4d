// What the chain did, in Envoy's terms: a HeaderMutation for the request or the response, or an ImmediateResponse
// for an answer of meshward's own. Pure.
//
// Envoy applies remove_headers first, then set_headers (source/extensions/filters/http/ext_proc/mutation_utils.cc).
import { PRINCIPAL_HEADER, type FilterResponse, type HopContext } from '../filters/index.js';
import { setHeaderOptions } from './header-map.js';
import type { HeaderMutation, ImmediateResponse } from './messages.js';

export interface RequestChanges {
  headerMutation: HeaderMutation;
  /** The path changed: Envoy must choose the route again. */
  clearRouteCache: boolean;
}

/**
 * The request side's changes (ctx.setHeaders / removeHeaders, the path), as the sidecar's forwarder makes them: every
 * header a filter set is removed first, then given its values, so no copy the client sent is left beside them (older
 * Envoys overwrite only a header's first copy). x-meshward-principal is always removed, and only a filter sets it: a
 * copy the client sent must never reach the app as if meshward had said who called.
 */
export function requestChanges(ctx: HopContext, receivedPath: string, rawValues: boolean): RequestChanges {
  const set = valuesByName(ctx.setHeaders);
  const remove = new Set([...ctx.removeHeaders, ...set.keys(), PRINCIPAL_HEADER]);
  const setHeaders = [...set].flatMap(([name, values]) => setHeaderOptions(name, values, rawValues));
  const clearRouteCache = ctx.request.path !== receivedPath;
  if (clearRouteCache) setHeaders.push(...setHeaderOptions(':path', [ctx.request.path], rawValues));
  return { headerMutation: { setHeaders, removeHeaders: [...remove] }, clearRouteCache };
}

/** The response side's changes to the headers: what is gone, and what has other values now (removed, then set). */
export function responseHeaderMutation(before: FilterResponse['headers'], after: FilterResponse['headers'], rawValues: boolean): HeaderMutation | undefined {
  const removeHeaders: string[] = [];
  const setHeaders: HeaderMutation['setHeaders'] = [];
  for (const name of Object.keys(before)) if (after[name] === undefined) removeHeaders.push(name);
  for (const [name, value] of Object.entries(after)) {
    const values = listOf(value);
    if (sameValues(listOf(before[name]), values)) continue;
    if (before[name] !== undefined) removeHeaders.push(name);
    setHeaders.push(...setHeaderOptions(name, values, rawValues));
  }
  return removeHeaders.length === 0 && setHeaders.length === 0 ? undefined : { removeHeaders, setHeaders };
}

/** Headers Envoy sets itself on a local reply, for the body it sends. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/**
 * An answer of meshward's own (a local reply, or a response whose status a filter changed): Envoy sends it instead of
 * the app's. Its headers replace the local reply's defaults (content-type text/plain).
 */
export function immediateResponse(response: FilterResponse, rawValues: boolean, details: string): ImmediateResponse {
  const setHeaders = Object.entries(response.headers)
    .filter(([name]) => !FRAMING.has(name))
    .flatMap(([name, value]) => setHeaderOptions(name, listOf(value), rawValues));
  return { status: { code: response.status }, headers: { setHeaders }, body: response.body ?? Buffer.alloc(0), details };
}

function valuesByName(pairs: ReadonlyArray<readonly [string, string]>): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const values = byName.get(name);
    if (values === undefined) byName.set(name, [value]);
    else values.push(value);
  }
  return byName;
}

function listOf(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

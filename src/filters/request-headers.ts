import type { HopContext } from './chain.js';

// Changing the request's headers from a filter: the change goes to the upstream request (setHeaders /
// removeHeaders) and to what later filters of the chain see (ctx.request.headers), so that a header a filter took
// away is gone for the policy and the logs too, and one it set is what they match.

type MutableHeaders = Record<string, string | undefined>;

/** Every value of a header as received (all its lines), by lower-case name. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  }
  return values;
}

/**
 * The names (lower case) under which the request carries a header: the name, and any spelling with `_` for `-` or the
 * other way round (x_api_key), which WSGI and CGI servers read as the same header (`headersWithUnderscores: allow`).
 */
export function headerSpellings(rawHeaders: readonly string[], name: string): string[] {
  const names = new Set([name]);
  const spelled = name.replaceAll('_', '-');
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i]!.toLowerCase();
    if (raw.replaceAll('_', '-') === spelled) names.add(raw);
  }
  return [...names];
}

export function removeRequestHeader(ctx: HopContext, name: string): void {
  ctx.removeHeaders.push(name);
  for (let i = ctx.setHeaders.length - 1; i >= 0; i--) if (ctx.setHeaders[i]![0] === name) ctx.setHeaders.splice(i, 1);
  delete (ctx.request.headers as MutableHeaders)[name];
}

/** Replaces every value the header had (as received or set by an earlier filter) with this one. */
export function setRequestHeader(ctx: HopContext, name: string, value: string): void {
  removeRequestHeader(ctx, name);
  ctx.setHeaders.push([name, value]);
  (ctx.request.headers as MutableHeaders)[name] = value;
}

/** Adds a value after those the header has (as received, or as an earlier filter left it). */
export function appendRequestHeader(ctx: HopContext, name: string, value: string): void {
  const current = currentValues(ctx, name);
  removeRequestHeader(ctx, name);
  for (const v of [...current, value]) ctx.setHeaders.push([name, v]);
  (ctx.request.headers as MutableHeaders)[name] = [...current, value].join(', ');
}

/** The values the upstream request would carry now. */
function currentValues(ctx: HopContext, name: string): string[] {
  const set = ctx.setHeaders.filter(([n]) => n === name).map(([, v]) => v);
  if (set.length > 0 || ctx.removeHeaders.includes(name)) return set;
  return headerValues(ctx.rawHeaders, name);
}

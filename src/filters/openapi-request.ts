import type { ErrorObject } from 'ajv';
import { normalisePath } from '../authz/index.js';
import { jsonReply, type LocalReply } from './local-reply.js';
import { ambiguousMember } from './json-member-names.js';
import { jsonPointer } from './json-pointer.js';
import { isJsonContentType, mediaType } from './media-type.js';
import {
  type CompiledMedia,
  type CompiledParameters,
  type OpenApi,
  type OpenApiOperation,
  type ParameterLocation,
} from './openapi-document.js';

// Whether a request is one the API description allows, as the validate filter answers it: the path (404), the
// method (405), the body's content type (415), then the parameters and the JSON body against their schemas (400,
// listing each problem with a JSON pointer into the part it is in). Pure: the document is compiled already.

/** A problem in one part of the request: the pointer is into that part (`/items/0/name` of the body, `/limit` of the query). */
export interface RequestProblem {
  in: ParameterLocation | 'body';
  pointer: string;
  message: string;
}

export type RequestVerdict =
  | { ok: true }
  | { ok: false; status: 404 | 415; reason: string }
  | { ok: false; status: 405; reason: string; allow: string }
  | { ok: false; status: 400; reason: string; problems: RequestProblem[] };

export interface RequestFacts {
  method: string;
  /** The request target: path and query as received. */
  target: string;
  /** Lower-case names. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The whole body; undefined or empty when there is none. */
  body: Buffer | undefined;
}

/** Refuses bytes that are no UTF-8, and keeps a BOM (so that JSON.parse refuses it: apps differ on skipping it). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** At most this many problems are listed: enough to fix a request, too few to make the answer a cost. */
export const MAX_PROBLEMS = 10;

export function checkRequest(api: OpenApi, request: RequestFacts): RequestVerdict {
  const target = normalisePath(request.target);
  if (!target.ok) return { ok: false, status: 400, reason: target.reason, problems: [] };
  const matched = matchPath(api, target.path);
  if (matched === undefined) return { ok: false, status: 404, reason: `no path of the API matches ${JSON.stringify(target.path)}` };
  const { path, values } = matched;
  const operation = path.operations.get(request.method) ?? (request.method === 'HEAD' ? path.operations.get('GET') : undefined);
  if (operation === undefined) {
    const allow = [...path.operations.keys()];
    if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD');
    return { ok: false, status: 405, reason: `${path.template} does not take ${request.method}`, allow: allow.join(', ') };
  }
  const hasBody = request.body !== undefined && request.body.length > 0;
  const media = hasBody ? bodyMedia(operation, request.headers['content-type']) : undefined;
  if (typeof media === 'string') return { ok: false, status: 415, reason: media };
  const problems = [
    ...checkParameters(operation.parameters.path, 'path', (key) => values.get(key)),
    ...checkParameters(operation.parameters.query, 'query', queryReader(target.query)),
    ...checkParameters(operation.parameters.header, 'header', (key) => request.headers[key]),
    ...checkParameters(operation.parameters.cookie, 'cookie', cookieReader(request.headers.cookie)),
    ...checkBody(operation, media, request),
  ];
  if (problems.length === 0) return { ok: true };
  return { ok: false, status: 400, reason: 'the request does not match the API description', problems: problems.slice(0, MAX_PROBLEMS) };
}

/** The validate filter's answer to a request it refuses: JSON, as meshward's other local replies. */
export function verdictReply(verdict: Exclude<RequestVerdict, { ok: true }>, requestId: string): LocalReply {
  switch (verdict.status) {
    case 404:
      return jsonReply(404, { error: 'not_found', reason: verdict.reason, requestId });
    case 405:
      return jsonReply(405, { error: 'method_not_allowed', reason: verdict.reason, requestId }, { allow: verdict.allow });
    case 415:
      return jsonReply(415, { error: 'unsupported_media_type', reason: verdict.reason, requestId });
    case 400:
      return jsonReply(400, { error: 'bad_request', reason: verdict.reason, ...(verdict.problems.length > 0 ? { errors: verdict.problems } : {}), requestId });
  }
}

function matchPath(api: OpenApi, path: string) {
  for (const candidate of api.paths) {
    const match = candidate.pattern.exec(path);
    if (match === null) continue;
    const values = new Map<string, string>();
    for (const [i, name] of candidate.names.entries()) values.set(name, match[i + 1]!);
    return { path: candidate, values };
  }
  return undefined;
}

/** The media type entry the body's content type falls under (exact, then `type/*`, then `*\/*`), or why there is none. */
function bodyMedia(operation: OpenApiOperation, contentType: string | undefined): CompiledMedia | string {
  if (operation.body === undefined) return 'this operation takes no request body';
  const declared = operation.body.media.map((m) => m.range);
  if (contentType === undefined) return `the request has a body but no content-type (this operation takes ${declared.join(', ')})`;
  const type = mediaType(contentType);
  const wildcard = `${type.split('/', 1)[0]}/*`;
  const media =
    operation.body.media.find((m) => m.range === type) ?? operation.body.media.find((m) => m.range === wildcard) ?? operation.body.media.find((m) => m.range === '*/*');
  return media ?? `content type ${JSON.stringify(type)} is not one this operation takes (${declared.join(', ')})`;
}

function checkBody(operation: OpenApiOperation, media: CompiledMedia | undefined, request: RequestFacts): RequestProblem[] {
  if (operation.body === undefined) return [];
  if (media === undefined) return operation.body.required ? [{ in: 'body', pointer: '', message: 'is required' }] : [];
  // Only JSON is parsed; other media types declared (forms, files, text) pass as they are.
  if (media.validate === undefined || !isJsonContentType(request.headers['content-type'])) return [];
  // JSON is UTF-8 (RFC 8259): bytes that are not would be read as U+FFFD here, and as anything by the app's decoder.
  let text: string;
  try {
    text = UTF8.decode(request.body!);
  } catch {
    return [{ in: 'body', pointer: '', message: 'is not valid UTF-8' }];
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [{ in: 'body', pointer: '', message: 'is not valid JSON' }];
  }
  // What was checked must be what the app reads, whichever of two same-named members its parser keeps.
  const ambiguous = ambiguousMember(text);
  if (ambiguous !== undefined) return [{ in: 'body', ...ambiguous }];
  return media.validate(value) ? [] : problemsOf('body', media.validate.errors);
}

type Reader = (key: string) => string | string[] | undefined;

function checkParameters(parameters: CompiledParameters | undefined, where: ParameterLocation, read: Reader): RequestProblem[] {
  if (parameters === undefined) return [];
  const values: Record<string, string | string[]> = {};
  for (const spec of parameters.specs) {
    let value = read(spec.key);
    if (value === undefined) continue;
    if (spec.array && spec.separator !== undefined && typeof value === 'string') value = value.split(spec.separator);
    else if (where === 'path' && typeof value === 'string') {
      const decoded = decodeSegment(value);
      if (decoded === undefined) return [{ in: 'path', pointer: jsonPointer([spec.key]), message: 'has invalid percent-encoding' }];
      value = decoded;
    }
    values[spec.key] = value;
  }
  return parameters.validate(values) ? [] : problemsOf(where, parameters.validate.errors);
}

function decodeSegment(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** A query parameter: its one value, or all of them when it is given more than once (a scalar then fails its schema). */
function queryReader(query: string): Reader {
  const params = new URLSearchParams(query.slice(1));
  return (key) => {
    const all = params.getAll(key);
    return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
  };
}

/**
 * A cookie: its one value, or all of them when it is sent more than once (a scalar then fails its schema): servers
 * differ on which of two same-named cookies they read (Werkzeug the first, Django the last).
 */
function cookieReader(header: string | undefined): Reader {
  const cookies = new Map<string, string[]>();
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const values = cookies.get(name);
    if (values === undefined) cookies.set(name, [pair.slice(eq + 1).trim()]);
    else values.push(pair.slice(eq + 1).trim());
  }
  return (key) => {
    const values = cookies.get(key);
    return values === undefined ? undefined : values.length === 1 ? values[0] : values;
  };
}

/** ajv's findings in the words and places a caller can act on; one line per place and message. */
function problemsOf(where: RequestProblem['in'], errors: ErrorObject[] | null | undefined): RequestProblem[] {
  const seen = new Set<string>();
  const out: RequestProblem[] = [];
  for (const error of errors ?? []) {
    const problem = describe(where, error);
    if (problem === undefined) continue;
    const id = `${problem.pointer} ${problem.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(problem);
  }
  return out;
}

function describe(where: RequestProblem['in'], error: ErrorObject): RequestProblem | undefined {
  const at = (suffix?: unknown) => (suffix === undefined ? error.instancePath : `${error.instancePath}${jsonPointer([String(suffix)])}`);
  switch (error.keyword) {
    case 'required':
      return { in: where, pointer: at(error.params.missingProperty), message: 'is required' };
    case 'additionalProperties':
      return { in: where, pointer: at(error.params.additionalProperty), message: 'is not allowed here (additionalProperties: false)' };
    case 'unevaluatedProperties':
      return { in: where, pointer: at(error.params.unevaluatedProperty), message: 'is not allowed here (unevaluatedProperties: false)' };
    case 'if':
      // Its branch's own errors say what is wrong.
      return undefined;
    default:
      return { in: where, pointer: at(), message: error.message ?? error.keyword };
  }
}

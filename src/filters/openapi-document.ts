import { Validator } from '@seriousme/openapi-schema-validator';
import type { ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { jsonPointer, pointerTarget } from './json-pointer.js';
import { mediaType } from './media-type.js';
import { OpenApiError } from './openapi-error.js';
import { SchemaCompiler, type CompiledSchema } from './openapi-schemas.js';

// An OpenAPI 3.0 or 3.1 document (YAML or JSON), checked against the official OpenAPI schemas and compiled once
// into what the validate filter needs per request: path templates in matching order, and per operation its
// parameters and request body with compiled JSON Schema validators. Anything the filter could not check as the
// document says is refused here, at load, with the JSON pointer to it: better a clear refusal than a check that
// quietly lets through what the document forbids.

export type ParameterLocation = 'path' | 'query' | 'header' | 'cookie';

export interface ParameterSpec {
  readonly name: string;
  /** How the request spells it: header names in lower case. */
  readonly key: string;
  readonly array: boolean;
  /** How one value holds an array's items (`a,b,c`), or undefined when each item is its own value (`?t=a&t=b`). */
  readonly separator: string | undefined;
}

export interface CompiledParameters {
  readonly specs: readonly ParameterSpec[];
  /** Checks `{ key: value | values }` (strings, coerced to the schema's types). */
  readonly validate: CompiledSchema;
}

export interface CompiledMedia {
  /** `application/json`, `application/*` or `*\/*`, lower case, without parameters. */
  readonly range: string;
  /** Undefined: the media type has no schema, anything goes. */
  readonly validate: CompiledSchema | undefined;
}

export interface OpenApiOperation {
  readonly parameters: Partial<Record<ParameterLocation, CompiledParameters>>;
  readonly body: { readonly required: boolean; readonly media: readonly CompiledMedia[] } | undefined;
}

export interface OpenApiPath {
  readonly template: string;
  readonly pattern: RegExp;
  /** The template's parameter names, in the order of the pattern's groups. */
  readonly names: readonly string[];
  /** By upper-case method. */
  readonly operations: ReadonlyMap<string, OpenApiOperation>;
}

export interface OpenApi {
  /** Concrete paths before templated ones (OpenAPI: "concrete paths are matched before their templated counterparts"). */
  readonly paths: readonly OpenApiPath[];
}

type Json = Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const DEFAULT_STYLE: Record<ParameterLocation, string> = { path: 'simple', query: 'form', header: 'simple', cookie: 'form' };
const SEPARATORS: Record<string, string> = { simple: ',', form: ',', spaceDelimited: ' ', pipeDelimited: '|' };
const STYLES: Record<ParameterLocation, readonly string[]> = {
  path: ['simple'],
  query: ['form', 'spaceDelimited', 'pipeDelimited'],
  header: ['simple'],
  cookie: ['form'],
};

/** One validator for every load: it compiles the OpenAPI schemas once, on first use. */
const documentValidator = new Validator({ allErrors: true });

/** Parses, checks and compiles a document; throws an Error (`POINTER: REASON`, or the YAML problem and its line). */
export async function loadOpenApi(text: string): Promise<OpenApi> {
  const doc = parseText(text);
  const version = typeof doc.openapi === 'string' ? /^3\.([01])\.\d+$/.exec(doc.openapi)?.[1] : undefined;
  if (version === undefined) throw new OpenApiError('/openapi', 'must be an OpenAPI version 3.0.x or 3.1.x');
  const result = await documentValidator.validate(doc);
  if (!result.valid) throw new Error(documentProblems(result.errors));
  return compile(doc, version === '0' ? '3.0' : '3.1');
}

function parseText(text: string): Json {
  const parsed = parseDocument(text, { prettyErrors: true });
  const problem = parsed.errors[0];
  if (problem !== undefined) throw new Error(`not valid YAML or JSON: ${problem.message.split('\n')[0]}`);
  const doc: unknown = parsed.toJS({ maxAliasCount: 100 });
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('is not an OpenAPI document (a mapping with `openapi`, `info` and `paths`)');
  return doc as Json;
}

/**
 * The official schemas' findings, most specific first: the oneOf/anyOf summaries and "must have $ref" that every
 * mismatch of an alternative drags along are dropped when something more telling remains.
 */
function documentProblems(errors: ErrorObject[] | string | undefined): string {
  if (typeof errors === 'string') return errors;
  const all = errors ?? [];
  const telling = all.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && !(e.keyword === 'required' && e.params.missingProperty === '$ref'));
  const chosen = (telling.length > 0 ? telling : all).sort((a, b) => b.instancePath.length - a.instancePath.length);
  const lines = [...new Set(chosen.map((e) => new OpenApiError(e.instancePath, describeSchemaError(e)).message))];
  return lines.slice(0, 5).join('; ');
}

function describeSchemaError(error: ErrorObject): string {
  if (error.keyword === 'additionalProperties') return `has a field the OpenAPI schema does not know: "${String(error.params.additionalProperty)}"`;
  return error.message ?? error.keyword;
}

function compile(doc: Json, version: '3.0' | '3.1'): OpenApi {
  const schemas = new SchemaCompiler(doc, version);
  const paths: OpenApiPath[] = [];
  for (const [template, raw] of Object.entries((doc.paths ?? {}) as Json)) {
    const at = jsonPointer(['paths', template]);
    const item = deref(doc, raw, at);
    const operations = new Map<string, OpenApiOperation>();
    for (const method of METHODS) {
      if (item[method] === undefined) continue;
      const opAt = `${at}/${method}`;
      const op = deref(doc, item[method], opAt);
      operations.set(method.toUpperCase(), {
        parameters: compileParameters(schemas, doc, mergedParameters(doc, item.parameters, op.parameters, at, opAt)),
        body: op.requestBody === undefined ? undefined : compileBody(schemas, doc, op.requestBody, `${opAt}/requestBody`),
      });
    }
    paths.push({ template, ...templatePattern(template), operations });
  }
  return { paths: paths.sort((a, b) => a.names.length - b.names.length) };
}

/** Follows `$ref`s of non-schema objects (path items, parameters, request bodies) inside the document. */
function deref(doc: Json, value: unknown, at: string): Json {
  let current = value;
  let where = at;
  for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
    if (hops === 20) throw new OpenApiError(where, 'too many $ref hops (a cycle?)');
    const ref = current.$ref;
    if (!ref.startsWith('#')) throw new OpenApiError(where, `$ref "${ref}": only references inside the document are supported`);
    current = pointerTarget(doc, ref.slice(1));
    if (current === undefined) throw new OpenApiError(where, `$ref "${ref}" points at nothing`);
    where = ref.slice(1);
  }
  if (!isObject(current)) throw new OpenApiError(where, 'must be a mapping');
  return current;
}

interface Located {
  param: Json;
  at: string;
}

/** The path item's parameters, overridden by the operation's with the same name and location. */
function mergedParameters(doc: Json, shared: unknown, own: unknown, at: string, opAt: string): Located[] {
  const merged = new Map<string, Located>();
  const add = (list: unknown, base: string) => {
    for (const [i, raw] of (Array.isArray(list) ? list : []).entries()) {
      const where = `${base}/parameters/${i}`;
      const param = deref(doc, raw, where);
      merged.set(`${String(param.in)} ${String(param.in === 'header' ? String(param.name).toLowerCase() : param.name)}`, { param, at: where });
    }
  };
  add(shared, at);
  add(own, opAt);
  return [...merged.values()];
}

function compileParameters(schemas: SchemaCompiler, doc: Json, located: Located[]): OpenApiOperation['parameters'] {
  const groups = new Map<ParameterLocation, { specs: ParameterSpec[]; properties: Json; required: string[]; at: string }>();
  for (const { param, at } of located) {
    const where = param.in as ParameterLocation;
    const name = String(param.name);
    if (param.content !== undefined) throw new OpenApiError(`${at}/content`, 'parameters described by `content` are not supported; use `schema`');
    const style = typeof param.style === 'string' ? param.style : DEFAULT_STYLE[where];
    if (!STYLES[where].includes(style)) throw new OpenApiError(`${at}/style`, `style "${style}" is not supported for ${where} parameters (supported: ${STYLES[where].join(', ')})`);
    const schema = isObject(param.schema) ? param.schema : {};
    const shape = schemaShape(doc, schema);
    if (shape === 'object') throw new OpenApiError(`${at}/schema`, 'object-valued parameters are not supported (only primitive values and arrays of them)');
    const explode = typeof param.explode === 'boolean' ? param.explode : style === 'form';
    const key = where === 'header' ? name.toLowerCase() : name;
    const group = groups.get(where) ?? { specs: [], properties: {}, required: [], at };
    group.specs.push({ name, key, array: shape === 'array', separator: shape === 'array' && !(explode && style === 'form') ? SEPARATORS[style] : undefined });
    group.properties[key] = schema;
    if (param.required === true || where === 'path') group.required.push(key);
    groups.set(where, group);
  }
  const out: OpenApiOperation['parameters'] = {};
  for (const [where, group] of groups) {
    // (Draft 04 wants no empty `required`.)
    const schema = { type: 'object', properties: group.properties, ...(group.required.length > 0 ? { required: group.required } : {}) };
    const validate = schemas.compileParameters(schema, group.at);
    out[where] = { specs: group.specs, validate };
  }
  return out;
}

/** Whether a parameter's schema (after $refs) takes an array, an object, or a single value. */
function schemaShape(doc: Json, schema: Json): 'array' | 'object' | 'single' {
  const resolved = typeof schema.$ref === 'string' && schema.$ref.startsWith('#') ? pointerTarget(doc, schema.$ref.slice(1)) : schema;
  const type = isObject(resolved) ? resolved.type : undefined;
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('array')) return 'array';
  if (types.includes('object') || (isObject(resolved) && resolved.properties !== undefined)) return 'object';
  return 'single';
}

function compileBody(schemas: SchemaCompiler, doc: Json, raw: unknown, at: string): OpenApiOperation['body'] {
  const body = deref(doc, raw, at);
  const media: CompiledMedia[] = [];
  for (const [range, value] of Object.entries(isObject(body.content) ? body.content : {})) {
    const schema = isObject(value) && isObject(value.schema) ? value.schema : undefined;
    const where = `${at}/content/${jsonPointer([range]).slice(1)}`;
    media.push({ range: mediaType(range), validate: schema === undefined ? undefined : schemas.compileBody(schema, `${where}/schema`) });
  }
  return { required: body.required === true, media };
}

/** `/users/{id}/files/{name}.json` → a pattern with one group per `{name}`, each matching one path segment. */
function templatePattern(template: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = template
    .split(/(\{[^}/]+\})/)
    .map((part) => {
      if (!/^\{[^}/]+\}$/.test(part)) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(part.slice(1, -1));
      return '([^/]+)';
    })
    .join('');
  return { pattern: new RegExp(`^${source}$`), names };
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

import type { Options, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import Ajv04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { pointerTarget } from './json-pointer.js';
import { OpenApiError } from './openapi-error.js';

// The JSON Schema side of an OpenAPI document, compiled with ajv. The two schema dialects:
//   3.1: JSON Schema 2020-12 itself (ajv's 2020 class).
//   3.0: "an extended subset" of draft 04 (exclusiveMinimum as a boolean, and so on): ajv's draft-04 class, which
//        also knows OpenAPI's `nullable`; the OpenAPI formats (int32, int64, float, double, byte, binary, password)
//        come with ajv-formats. OpenAPI's annotations (example, xml, discriminator, externalDocs, x-...) are let be:
//        the document was checked against the OpenAPI schema first, which refuses unknown keywords in 3.0.
// Schemas point at each other with `$ref: '#/components/schemas/X'` (or any pointer into the document): each target is
// registered with ajv under that very string, so ajv resolves the ref as written, recursive schemas included.
// Parameters are compared as the strings they arrive as, coerced to the schema's types (`?limit=5` is the integer 5,
// one value where an array is expected is an array of one); bodies are JSON and are never coerced.

export type CompiledSchema = ValidateFunction;

/** Values, not schemas: a `$ref` inside them is data. */
const DATA_KEYWORDS = new Set(['example', 'examples', 'enum', 'const', 'default']);

type Ajv = Pick<Ajv2020, 'compile' | 'addSchema'>;

export class SchemaCompiler {
  private readonly forParameters: Ajv;
  private readonly forBodies: Ajv;
  private readonly registered = new Set<string>();

  constructor(
    private readonly doc: unknown,
    version: '3.0' | '3.1',
  ) {
    const make = (coerceTypes: Options['coerceTypes']): Ajv => {
      const options: Options = { allErrors: true, strictSchema: false, coerceTypes, logger: false };
      const ajv = version === '3.0' ? new Ajv04.default(options) : new Ajv2020(options);
      addFormats.default(ajv);
      return ajv;
    };
    this.forParameters = make('array');
    this.forBodies = make(false);
  }

  compileParameters(schema: object, at: string): CompiledSchema {
    return this.compile(this.forParameters, schema, at);
  }

  compileBody(schema: object, at: string): CompiledSchema {
    return this.compile(this.forBodies, schema, at);
  }

  private compile(ajv: Ajv, schema: object, at: string): CompiledSchema {
    this.register(schema, at);
    try {
      return ajv.compile(schema);
    } catch (err) {
      throw new OpenApiError(at, `the schema cannot be compiled: ${(err as Error).message}`);
    }
  }

  /** Registers every schema `schema` refers to, and those they refer to, once each. */
  private register(schema: unknown, at: string): void {
    if (schema === null || typeof schema !== 'object') return;
    if (Array.isArray(schema)) {
      for (const item of schema) this.register(item, at);
      return;
    }
    for (const [key, value] of Object.entries(schema)) {
      if (key === '$ref' && typeof value === 'string') this.registerTarget(value, at);
      else if (!DATA_KEYWORDS.has(key)) this.register(value, at);
    }
  }

  private registerTarget(ref: string, at: string): void {
    if (this.registered.has(ref)) return;
    if (!ref.startsWith('#')) throw new OpenApiError(at, `$ref "${ref}": only references inside the document are supported`);
    const target = pointerTarget(this.doc, ref.slice(1));
    if (target === null || typeof target !== 'object') throw new OpenApiError(at, `$ref "${ref}" points at no schema`);
    this.registered.add(ref);
    this.forParameters.addSchema(target, ref);
    this.forBodies.addSchema(target, ref);
    this.register(target, ref.slice(1));
  }
}

// Checks Kubernetes objects against the Kubernetes API schema, in two layers, both from the `kubernetes-models`
// package (generated from the upstream Kubernetes OpenAPI document):
//  1. its JSON Schema validators, compiled with ajv: types, required fields, enums, formats (quantities,
//     int-or-string, base64);
//  2. its TypeScript declarations of the same schema, through the TypeScript compiler's excess-property check:
//     unknown fields, which the OpenAPI document (so layer 1) does not refuse but the API server does
//     (kubectl's default field validation is Strict).
import ts from 'typescript';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

type KubeObject = Record<string, unknown> & { apiVersion?: unknown; kind?: unknown; metadata?: { name?: string } };

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function describe(object: KubeObject, label: string): string {
  return `${label}: ${String(object.kind)} ${object.metadata?.name ?? ''}`.trim();
}

/** Layer 1: the ajv-compiled JSON Schema of the object's apiVersion and kind. */
async function schemaErrors(object: KubeObject, label: string): Promise<string[]> {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return [`${label}: no apiVersion and kind`];
  // kubernetes-models lays its modules out by apiVersion: "v1" → kubernetes-models/v1, "apps/v1" → apps/v1.
  const mod = (await import(/* @vite-ignore */ `kubernetes-models/${apiVersion}`).catch(() => ({}))) as Record<string, ModelClass | undefined>;
  const Model = mod[kind];
  if (!Model) return [`${describe(object, label)}: no schema for ${apiVersion} ${kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    return [`${describe(object, label)}: ${(err as Error).message}`];
  }
}

/** JSON null is how the API server writes an unset optional field (creationTimestamp: null); the types say "absent". */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
}

/** Layer 2: every object as a typed constant in one in-memory program; an unknown field is a type error. */
function unknownFieldErrors(objects: { label: string; object: KubeObject }[]): string[] {
  const file = join(REPO_ROOT, 'test', '__kube_schema_check__.ts');
  const lines: string[] = [];
  const owners: string[] = [];
  objects.forEach(({ label, object }, i) => {
    const { apiVersion, kind } = object;
    const text = `import type { I${String(kind)} as T${i} } from 'kubernetes-models/${String(apiVersion)}/${String(kind)}';\nexport const o${i}: T${i} = ${JSON.stringify(withoutNulls(object), null, 1)};`;
    for (const line of text.split('\n')) {
      lines.push(line);
      owners.push(describe(object, label));
    }
  });
  const source = lines.join('\n');
  const host = ts.createCompilerHost({});
  const readSource = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version) => (name === file ? ts.createSourceFile(name, source, version) : readSource(name, version));
  const program = ts.createProgram(
    [file],
    { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, types: [] },
    host,
  );
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    return `${owners[line] ?? 'schema check'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')} (at: ${lines[line]?.trim() ?? '?'})`;
  });
}

/** Every problem found in the objects; empty when they all match the Kubernetes schema. */
export async function kubernetesSchemaErrors(objects: { label: string; object: KubeObject }[]): Promise<string[]> {
  const typed = objects.filter(({ object }) => typeof object.apiVersion === 'string' && typeof object.kind === 'string');
  const layer1 = (await Promise.all(objects.map(({ label, object }) => schemaErrors(object, label)))).flat();
  return [...layer1, ...unknownFieldErrors(typed)];
}

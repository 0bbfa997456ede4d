import { readFileSync } from 'node:fs';
import { parseAllDocuments, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { plainIssueMessage } from './issue-message.js';

/** Parses YAML text and validates it; throws ConfigError naming `label`, the path inside and the reason. */
export function parseYaml<S extends z.ZodType>(text: string, schema: S, label: string): z.output<S> {
  return validateDocument(parseDocument(text, { uniqueKeys: true, prettyErrors: false }), schema, label);
}

/**
 * Parses YAML text that may hold several documents (separated by `---`) and validates each one; errors name the
 * document ("file (document 2)") when there is more than one.
 */
export function parseYamlDocuments<S extends z.ZodType>(text: string, schema: S, label: string): Array<z.output<S>> {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  return docs.map((doc, i) => validateDocument(doc, schema, docs.length > 1 ? `${label} (document ${i + 1})` : label));
}

function validateDocument<S extends z.ZodType>(doc: Document, schema: S, label: string): z.output<S> {
  if (doc.errors.length > 0) {
    throw new ConfigError(
      label,
      doc.errors.map((e) => ({ path: [], message: `invalid YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = schema.safeParse(data, { error: plainIssueMessage });
  if (!result.success) throw new ConfigError(label, problemsOf(result.error.issues));
  return result.data;
}

/**
 * A field that takes forms of different kinds (a mapping, or a list of them) fails as a whole in the schema
 * library; the form of the value's kind is the one meant, so its own problems are the ones shown, each at its path.
 */
function problemsOf(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const meant = issue.errors.filter((form) => !form.every((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (meant.length === 1) return problemsOf(meant[0]!, path);
    }
    return [{ path, message: issue.message }];
  });
}

/**
 * Reads a YAML file and validates it against a schema. Errors name the file as the user wrote it (a relative path
 * stays relative): that is the name they will look for.
 */
export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: [], message: fileProblem(err) }]);
  }
  return parseYaml(text, schema, file);
}

/** Why a file operation failed, in words: "file not found", "permission denied", "read-only file system". */
export function fileProblem(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EROFS':
      return 'read-only file system';
    default:
      return (err as Error).message;
  }
}

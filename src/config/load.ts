import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';

/** Parses YAML text and validates it; throws ConfigError naming `label`, the path inside and the reason. */
export function parseYaml<S extends z.ZodType>(text: string, schema: S, label: string): z.output<S> {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      label,
      doc.errors.map((e) => ({ path: [], message: `invalid YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = schema.safeParse(data);
  if (!result.success) {
    const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
      path: issue.path,
      message: issue.message,
    }));
    throw new ConfigError(label, problems);
  }
  return result.data;
}

/** Reads a YAML file and validates it against a schema; errors are labelled with the file's name. */
export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(basename(file), [{ path: [], message: reason }]);
  }
  return parseYaml(text, schema, basename(file));
}

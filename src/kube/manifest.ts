// Kubernetes manifests as plain JSON data. The transform reads only the few fields it needs and leaves every other
// field exactly as it found it, so it works with any API version's extra fields without a full object model.
import { formatPath } from '../config/errors.js';

export type JsonObject = { [key: string]: unknown };
export type ManifestPath = ReadonlyArray<string | number>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A manifest that cannot be injected as written; `path` points inside the document at what is wrong. */
export class ManifestError extends Error {
  constructor(
    readonly path: ManifestPath,
    readonly reason: string,
  ) {
    super(path.length === 0 ? reason : `${formatPath(path)}: ${reason}`);
    this.name = 'ManifestError';
  }
}

/** The object at `key`, created if missing; a non-object there is an error naming the path. */
export function objectAt(parent: JsonObject, key: string, path: ManifestPath): JsonObject {
  const value = parent[key];
  if (value === undefined || value === null) {
    const created: JsonObject = {};
    parent[key] = created;
    return created;
  }
  if (!isObject(value)) throw new ManifestError([...path, key], 'must be an object');
  return value;
}

/** The array at `key`, created if missing; a non-array there is an error naming the path. */
export function arrayAt(parent: JsonObject, key: string, path: ManifestPath): unknown[] {
  const value = parent[key];
  if (value === undefined || value === null) {
    const created: unknown[] = [];
    parent[key] = created;
    return created;
  }
  if (!Array.isArray(value)) throw new ManifestError([...path, key], 'must be a list');
  return value;
}

/** The annotations of an object's metadata, or an empty record; read-only. */
export function annotationsOf(metadata: unknown): Record<string, unknown> {
  if (!isObject(metadata) || !isObject(metadata.annotations)) return {};
  return metadata.annotations;
}

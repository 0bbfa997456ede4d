// JSON pointers (RFC 6901): how the validate filter names a place in an OpenAPI document and in a request.

/** `['paths', '/users/{id}']` → `/paths/~1users~1{id}`. */
export function jsonPointer(parts: ReadonlyArray<string | number>): string {
  return parts.map((part) => `/${String(part).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/**
 * The value a pointer names, or undefined. Takes a `$ref`'s fragment as written (`/components/schemas/My%20Thing`):
 * a fragment is a URI part, so it is percent-decoded first.
 */
export function pointerTarget(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let decoded: string;
  try {
    decoded = decodeURIComponent(pointer);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith('/')) return undefined;
  let current: unknown = doc;
  for (const raw of decoded.slice(1).split('/')) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

// Media types as the gateway filters compare them.

/** `application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(value: string): string {
  return value.split(';', 1)[0]!.trim().toLowerCase();
}

/**
 * Types apps send JSON under besides `application/json`; a JSON answer under one of them must be masked, and a JSON
 * body under one of them validated, as much as under `application/json`.
 */
const JSON_ALIASES = new Set(['application/json', 'text/json', 'application/x-json', 'text/x-json']);

/** `application/json`, its aliases and the `+json` types (`application/problem+json`), with any parameters. */
export function isJsonContentType(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== 'string') return false;
  const type = mediaType(contentType);
  return JSON_ALIASES.has(type) || (type.endsWith('+json') && type.indexOf('/') > 0);
}

// Media types as the gateway filters compare them.

/** `application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(value: string): string {
  return value.split(';', 1)[0]!.trim().toLowerCase();
}

/** `application/json` and the `+json` types (`application/problem+json`), with any parameters. */
export function isJsonContentType(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== 'string') return false;
  const type = mediaType(contentType);
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

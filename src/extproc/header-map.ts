// Envoy's header maps ↔ the shapes the chain reads and the mutations Envoy applies. Pure.
//
// Envoy puts each value in `value`, or, under its send_header_raw_value runtime guard (on in current Envoys), in
// `raw_value`; it reads the values of an answer's set_headers from the same field, and refuses an answer that fills
// both. So an answer writes its values the way the message it answers was written. Values are bytes to Envoy; they
// are read as latin1, as Node's HTTP parser reads them, so that a value the chain leaves alone goes back byte for byte.
import type { HeaderMapMessage, HeaderValueOption } from './messages.js';

export interface ReceivedHeaders {
  /** [name, value, name, value, ...]: names in lower case, duplicates kept, pseudo-headers included. */
  raw: string[];
  /** Envoy wrote the values in raw_value: an answer must too. */
  rawValues: boolean;
}

const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export function receivedHeaders(map: HeaderMapMessage | null | undefined): ReceivedHeaders {
  const raw: string[] = [];
  let rawValues = false;
  for (const entry of map?.headers ?? []) {
    if (!entry.key) continue;
    const hasRaw = entry.rawValue !== undefined && entry.rawValue.length > 0;
    if (hasRaw) rawValues = true;
    raw.push(entry.key.toLowerCase(), hasRaw ? Buffer.from(entry.rawValue!).toString('latin1') : (entry.value ?? ''));
  }
  return { raw, rawValues };
}

/** One value per name, as Node's HTTP server gives a request's headers: repeated names joined (cookies with "; "). */
export function joinedHeaders(raw: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const earlier = headers[name];
    headers[name] = earlier === undefined ? value : `${earlier}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return headers;
}

/** A response's headers as the response side reads them: repeated names (set-cookie) as a list; no pseudo-headers. */
export function listedHeaders(raw: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.startsWith(':')) continue;
    const earlier = headers[name];
    headers[name] = earlier === undefined ? raw[i + 1]! : [...(Array.isArray(earlier) ? earlier : [earlier]), raw[i + 1]!];
  }
  return headers;
}

/** The first value of a name, pseudo-headers included. */
export function firstValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
}

/**
 * set_headers for `name`'s new values: one value overwrites whatever the header had; several are each appended (the
 * name must then be among remove_headers, which Envoy applies first). Envoy's ext_proc filter reads the `append`
 * flag (unset: overwrite), newer ones append_action when it is not 0.
 */
export function setHeaderOptions(name: string, values: readonly string[], rawValues: boolean): HeaderValueOption[] {
  const header = (value: string) => (rawValues ? { key: name, rawValue: Buffer.from(value, 'latin1') } : { key: name, value });
  if (values.length === 1) return [{ header: header(values[0]!), appendAction: OVERWRITE_IF_EXISTS_OR_ADD }];
  return values.map((value) => ({ header: header(value), append: { value: true } }));
}

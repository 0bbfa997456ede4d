// Reads the URI names out of Node's `X509Certificate.subjectAltName` string, so that SVID checks run on OpenSSL's
// parse (about 0.06 ms a certificate) instead of a JavaScript ASN.1 decoder (about 5 ms, on every new connection).
// The string is `TYPE:value` entries joined by ", "; since CVE-2021-44532 Node writes a value as a JSON string
// literal whenever it could be ambiguous (a comma, a quote, a control character), so a crafted URI cannot smuggle
// in a second entry. Anything this reader does not understand is refused (undefined): the caller fails closed.

// Node's quoting rule: a comma, a quote, a backslash, or anything outside printable ASCII (space to tilde).
const UNQUOTED_NEVER = /[^ -~]|[,"\\]/;

/** The URI SANs, in order; undefined when the string is not in the format Node documents. Pure. */
export function uriSubjectAltNames(subjectAltName: string | undefined): string[] | undefined {
  const uris: string[] = [];
  if (subjectAltName === undefined || subjectAltName === '') return uris;
  let at = 0;
  while (at < subjectAltName.length) {
    const colon = subjectAltName.indexOf(':', at);
    if (colon === -1) return undefined;
    const type = subjectAltName.slice(at, colon);
    let value: string;
    let end: number;
    if (subjectAltName[colon + 1] === '"') {
      end = endOfJsonString(subjectAltName, colon + 1);
      if (end === -1) return undefined;
      try {
        value = JSON.parse(subjectAltName.slice(colon + 1, end)) as string;
      } catch {
        return undefined;
      }
    } else {
      const next = subjectAltName.indexOf(', ', colon + 1);
      end = next === -1 ? subjectAltName.length : next;
      value = subjectAltName.slice(colon + 1, end);
      // Finding one of these unquoted means the string is not in the format Node writes.
      if (UNQUOTED_NEVER.test(value)) return undefined;
    }
    if (type === 'URI') uris.push(value);
    if (end === subjectAltName.length) break;
    if (subjectAltName.slice(end, end + 2) !== ', ') return undefined;
    at = end + 2;
  }
  return uris;
}

/** The index just past the JSON string literal that opens at `start`, or -1. */
function endOfJsonString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

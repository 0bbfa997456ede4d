import type { PatternResult } from './pattern-result.js';

// The keys a `when` condition may test. Unknown keys are refused at load time: a misspelt key that silently never
// matched would turn an allow into a deny at best and a deny into an allow at worst.

export type ConditionKey =
  | { kind: 'header'; name: string }
  | { kind: 'claim'; path: readonly string[] }
  | { kind: 'sourceIp' }
  | { kind: 'sourcePrincipal' }
  | { kind: 'context'; name: string };

export const CONDITION_KEY_FORMS = [
  'request.headers[NAME]',
  'jwt.claims.CLAIM (a dotted path)',
  'source.ip',
  'source.principal',
  'context[NAME]',
];

/** An HTTP header name (RFC 9110 token), lower case. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const BRACKETED = /^(request\.headers|context)\[(.*)\]$/;

export function parseConditionKey(source: string): PatternResult<ConditionKey> {
  if (source === 'source.ip') return { ok: true, value: { kind: 'sourceIp' } };
  if (source === 'source.principal') return { ok: true, value: { kind: 'sourcePrincipal' } };
  if (source.startsWith('jwt.claims.')) {
    const path = source.slice('jwt.claims.'.length).split('.');
    if (path.some((p) => p === '')) return { ok: false, error: `"${source}": the claim path has an empty part` };
    return { ok: true, value: { kind: 'claim', path } };
  }
  const bracketed = BRACKETED.exec(source);
  if (bracketed) {
    const name = bracketed[2]!;
    if (bracketed[1] === 'context') {
      if (name === '') return { ok: false, error: `"${source}": the context extension name is empty` };
      return { ok: true, value: { kind: 'context', name } };
    }
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(lower)) return { ok: false, error: `"${source}": "${name}" is not a header name` };
    return { ok: true, value: { kind: 'header', name: lower } };
  }
  return { ok: false, error: `unknown key "${source}"; expected one of ${CONDITION_KEY_FORMS.join(', ')}` };
}

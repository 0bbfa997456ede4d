import type { z } from 'zod';

// Plain words for the problems the schema library finds on its own ("Invalid input: expected string, received
// undefined" becomes "is required"). The path is printed before the message, so a message starts with a verb.
// Messages a schema sets itself are kept: the library gives them precedence over this map.

type Issue = z.core.$ZodRawIssue;

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  null: 'null',
};

/** What a YAML value is, in the words a config's author uses. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

const typeName = (expected: string) => TYPE_NAMES[expected] ?? expected;

function bound(issue: { origin: string; inclusive?: boolean; exact?: boolean }, limit: number | bigint, side: 'least' | 'most'): string {
  const n = Number(limit);
  switch (issue.origin) {
    case 'string':
      if (side === 'least' && n === 1) return 'must not be empty';
      return `must be ${issue.exact ? 'exactly' : `at ${side}`} ${n} character${n === 1 ? '' : 's'} long`;
    case 'array':
    case 'set':
      if (side === 'least' && n === 1) return 'must have at least one entry';
      return `must have ${issue.exact ? 'exactly' : `at ${side}`} ${n} entr${n === 1 ? 'y' : 'ies'}`;
    default:
      if (issue.inclusive === false) return `must be ${side === 'least' ? 'greater' : 'less'} than ${n}`;
      return `must be at ${side} ${n}`;
  }
}

/** A plain message for an issue the schema did not word itself; `undefined` leaves the library's. */
export function plainIssueMessage(issue: Issue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${typeName(issue.expected)}, not ${describeValue(issue.input)}`;
    case 'invalid_value':
      if (issue.input === undefined) return 'is required';
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}, not ${describeValue(issue.input)}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${describeValue(issue.input)}`;
    case 'too_small':
      return bound(issue, issue.minimum, 'least');
    case 'too_big':
      return bound(issue, issue.maximum, 'most');
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_format':
      return `${describeValue(issue.input)} is not a valid ${issue.format}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union': {
      if (issue.input === undefined) return 'is required';
      // Each alternative's first complaint about the value's type, e.g. "must be a string or a list".
      const expected = [...new Set(issue.errors.flatMap((alternative) => alternative.flatMap((i) => (i.code === 'invalid_type' && i.path.length === 0 ? [typeName(i.expected)] : []))))];
      return expected.length === issue.errors.length && expected.length > 0
        ? `must be ${expected.join(' or ')}, not ${describeValue(issue.input)}`
        : `${describeValue(issue.input)} matches none of the forms this field takes`;
    }
    case 'invalid_key':
      return `has a key that is not valid: ${issue.issues.map((i) => i.message).join('; ')}`;
    case 'invalid_element':
      return `has an entry that is not valid: ${issue.issues.map((i) => i.message).join('; ')}`;
    case 'custom':
      return 'is not valid';
    default:
      return undefined;
  }
}

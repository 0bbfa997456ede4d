import { JSONPath } from 'jsonpath-plus';

// Masking fields of a JSON document: by name wherever it occurs (names compared without regard to case: an app's
// `SSN` is as secret as `ssn`), or by JSON path. `full` makes a value "***"; `partial` keeps the last 4 characters
// of a value of 8 or more ("***1111"), since showing 4 of a shorter one shows most of it. null stays null.
//
// The document is always written anew, also when nothing matched: a field hidden behind a duplicate key (which a
// parser keeps first and JSON.parse last) never reaches the client in the original bytes. Numbers keep their exact
// digits (JSON.parse's source text access and JSON.rawJSON), so an id past 2^53 is not rounded on the way.

export type MaskMode = 'full' | 'partial';

export interface MaskRule {
  /** A member name, anywhere in the document. */
  name?: string;
  /** A JSON path (`$.card.number`, `$.users[*].email`, `$..token`); no filter or script expressions. */
  path?: string;
  mode: MaskMode;
}

interface RawJson {
  readonly rawJSON: string;
}

// Node has both (ES2026 JSON.parse source text access); TypeScript's lib does not declare them yet.
const json = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
  parse(text: string, reviver: (this: unknown, key: string, value: unknown, context: { source?: string }) => unknown): unknown;
};

const MASK = '***';
/** `partial` shows the last 4 characters only of values at least this long. */
const PARTIAL_MIN_LENGTH = 8;

export function maskValue(value: unknown, mode: MaskMode): unknown {
  if (value === null) return null;
  if (mode === 'partial') {
    const text = typeof value === 'string' ? value : json.isRawJSON(value) ? value.rawJSON : undefined;
    if (text !== undefined && text.length >= PARTIAL_MIN_LENGTH) return MASK + text.slice(-4);
  }
  return MASK;
}

/** Compiles the rules into a function from JSON text to masked JSON text; it throws a SyntaxError for text that is no JSON. */
export function jsonMasker(rules: readonly MaskRule[]): (text: string) => string {
  const names = new Map<string, MaskMode>();
  for (const rule of rules) if (rule.name !== undefined) names.set(rule.name.toLowerCase(), rule.mode);
  const paths = rules.filter((rule) => rule.path !== undefined) as Array<Required<Pick<MaskRule, 'path'>> & MaskRule>;
  return (text) => {
    const doc = json.parse(text, function (key, value, context) {
      const kept = typeof value === 'number' && context.source !== undefined ? json.rawJSON(context.source) : value;
      const mode = key === '' || Array.isArray(this) ? undefined : names.get(key.toLowerCase());
      return mode === undefined ? kept : maskValue(kept, mode);
    });
    for (const rule of paths) {
      JSONPath({
        path: rule.path,
        json: doc as object,
        eval: false,
        resultType: 'all',
        callback: (match: { parent: unknown; parentProperty: string | number; value: unknown }) => {
          // A path that reaches into a number's exact digits selects nothing to mask.
          if (match.parent === null || typeof match.parent !== 'object' || json.isRawJSON(match.parent)) return;
          (match.parent as Record<string | number, unknown>)[match.parentProperty] = maskValue(match.value, rule.mode);
        },
      });
    }
    return JSON.stringify(doc);
  };
}

import { jsonPointer } from './json-pointer.js';

// Member names of a JSON text that parsers read differently. JSON.parse keeps the last of `{"role":"user",
// "role":"admin"}`, other parsers the first (or refuse it); and a name with a lone surrogate (`"role\ud800"`) is a name
// of its own to JSON.parse, while parsers that drop or truncate what is no Unicode make it `role`: a body checked as one
// object could be read by the app as another. Pure; the text is valid JSON already (JSON.parse read it), so this only
// has to tell strings, names and nesting apart.

export interface AmbiguousMember {
  /** The JSON pointer of the member (the second one, for a name given twice). */
  pointer: string;
  message: string;
}

/** A lone surrogate: half of a pair without the other half, which is no Unicode character. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Frame {
  /** Member names seen so far; undefined for an array. */
  readonly names: Set<string> | undefined;
  /** The member name or the array index the parser is at. */
  at: string | number;
  /** In an object: the next string is a member name. */
  expectName: boolean;
}

/** The first member name of `text` given twice in one object or not well-formed Unicode, or undefined. */
export function ambiguousMember(text: string): AmbiguousMember | undefined {
  const frames: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const top = frames[frames.length - 1];
    if (code === 0x22) {
      const end = stringEnd(text, i);
      if (top?.names !== undefined && top.expectName) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        top.at = name;
        if (top.names.has(name)) return { pointer: jsonPointer(frames.map((frame) => frame.at)), message: 'is a member name the object has more than once' };
        if (LONE_SURROGATE.test(name)) return { pointer: jsonPointer(frames.map((frame) => frame.at)), message: 'is a member name with a lone surrogate (no Unicode)' };
        top.names.add(name);
        top.expectName = false;
      }
      i = end;
    } else if (code === 0x7b) {
      frames.push({ names: new Set(), at: '', expectName: true });
    } else if (code === 0x5b) {
      frames.push({ names: undefined, at: 0, expectName: false });
    } else if (code === 0x7d || code === 0x5d) {
      frames.pop();
    } else if (code === 0x2c && top !== undefined) {
      if (top.names === undefined) top.at = (top.at as number) + 1;
      else top.expectName = true;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const quote = text.indexOf('"', i);
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    i = quote + 1;
  }
}

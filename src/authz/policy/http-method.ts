import { listHas, listValues, toValueList, type ValueList } from './value-list.js';

// Methods in a rule are usually a few of the nine standard ones, so they compile to a bit mask held in the rule
// itself: testing one costs no memory read at all. A rule naming any other method keeps a plain value list.

const STANDARD = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'] as const;

/** The bit of an upper-case standard method, or 0 for any other method. */
export function methodBit(method: string): number {
  switch (method) {
    case 'GET':
      return 1;
    case 'HEAD':
      return 2;
    case 'POST':
      return 4;
    case 'PUT':
      return 8;
    case 'DELETE':
      return 16;
    case 'PATCH':
      return 32;
    case 'OPTIONS':
      return 64;
    case 'CONNECT':
      return 128;
    case 'TRACE':
      return 256;
    default:
      return 0;
  }
}

/** A bit mask (a number) when every method is standard, else the list of methods. */
export type MethodSet = number | ValueList<string>;

export function toMethodSet(methods: readonly string[]): MethodSet {
  const bits = methods.map(methodBit);
  return bits.every((b) => b !== 0) ? bits.reduce((m, b) => m | b, 0) : toValueList(methods);
}

/** `bit` is methodBit(method), computed once per request. */
export function methodSetHas(set: MethodSet, method: string, bit: number): boolean {
  return typeof set === 'number' ? (set & bit) !== 0 : listHas(set, method);
}

export function methodSetValues(set: MethodSet): readonly string[] {
  return typeof set === 'number' ? STANDARD.filter((m) => (set & methodBit(m)) !== 0) : listValues(set);
}

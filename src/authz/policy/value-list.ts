// Exact-value lists as policies write them are short: one host, two methods. With 10,000 rules a decision's cost is
// set by how many cold memory locations it reads, not by how many comparisons it makes, so the list is stored as
// compactly as it can be: a lone value as itself (no container to read), a few values as an array, many as a Set.

export type ValueList<T extends string | number> = T | readonly T[] | ReadonlySet<T>;

const ARRAY_UP_TO = 8;

export function toValueList<T extends string | number>(values: Iterable<T>): ValueList<T> {
  const unique = [...new Set(values)];
  if (unique.length === 1) return unique[0]!;
  return unique.length <= ARRAY_UP_TO ? unique : new Set(unique);
}

export function listHas<T extends string | number>(list: ValueList<T>, value: T): boolean {
  if (list === value) return true;
  if (typeof list !== 'object') return false;
  return Array.isArray(list) ? list.includes(value) : (list as ReadonlySet<T>).has(value);
}

export function listValues<T extends string | number>(list: ValueList<T>): readonly T[] {
  if (typeof list !== 'object') return [list];
  return Array.isArray(list) ? list : [...(list as ReadonlySet<T>)];
}

// A parsed policy's strings are slices of the YAML text: each a small header pointing into that one large string.
// Comparing one against a request reads two places in memory, far apart, and the whole text stays alive as long as
// the policy does. With thousands of rules those reads miss the CPU caches, and they are most of what a decision
// costs. So the compiler works on a copy of the document whose strings are fresh, flat and shared: one object per
// distinct value, however many rules repeat it (the host every rule of a service names, a header name, a method).

/** A deep copy of JSON data (a validated policy document) in which every string is a flat copy, one per value. */
export function withPooledStrings<T>(value: T): T {
  const pool = new Map<string, string>();
  const share = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const pooled = pool.get(v);
      if (pooled !== undefined) return pooled;
      pool.set(v, v);
      return v;
    }
    if (v !== null && typeof v === 'object') {
      const record = v as Record<string, unknown>;
      for (const key of Object.keys(record)) record[key] = share(record[key]);
    }
    return v;
  };
  // A validated document is JSON data (strings, finite numbers, booleans, arrays, objects), and JSON.parse makes every
  // string in the copy a new sequential one, never a slice of or a rope over another. The copy is ours to rewrite.
  return share(JSON.parse(JSON.stringify(value))) as T;
}

/** A flat copy of a string the compiler derives (a slice of a pooled string is a slice again). */
export function flatString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

import { z } from 'zod';

// Policy objects are strict so that a typo (`principal:` for `principals:`) is an error instead of a field that is
// silently ignored, which in an allow rule would widen it. The error names the nearest known field.

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function describeUnknownField(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best === undefined ? `"${key}"` : `"${key}" (did you mean "${best}"?)`;
}

export function strictObject<S extends z.ZodRawShape>(shape: S) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const fields = issue.keys.map((k) => describeUnknownField(k, known));
      return `unknown field${fields.length > 1 ? 's' : ''} ${fields.join(', ')}; known fields: ${known.join(', ')}`;
    },
  });
}

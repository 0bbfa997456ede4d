/** The outcome of validating one pattern from a policy: the compiled value, or why it is refused. */
export type PatternResult<T> = { ok: true; value: T } | { ok: false; error: string };

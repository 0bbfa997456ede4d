// Policies repeat themselves: the same caller prefixes, header conditions and path lists recur across many rules.
// Compiled once per distinct list and shared, a repeated matcher is one object that stays in cache, not one cold
// object per rule that a decision must fetch. Matchers are immutable, so sharing them changes nothing else.

/** Matchers built so far for one policy, by kind and source list. */
export class SharedMatchers {
  private readonly built = new Map<string, unknown>();

  /** The matcher for `sources` of this `kind`, built by `build` the first time these sources are seen. */
  get<T>(kind: string, sources: readonly unknown[], build: () => T): T {
    const key = `${kind}\n${JSON.stringify(sources)}`;
    if (this.built.has(key)) return this.built.get(key) as T;
    const matcher = build();
    this.built.set(key, matcher);
    return matcher;
  }
}

// Everything the demo starts, stopped newest first, on whichever path ends the demo (success, a failed check, an
// error, Ctrl-C). stopAll stops what is registered, including what is registered while it runs; calling it again
// stops whatever a step still finishing after Ctrl-C registered since.

type Stop = () => Promise<unknown> | unknown;

export class Resources {
  private readonly stack: Array<{ name: string; stop: Stop }> = [];

  add(name: string, stop: Stop): void {
    this.stack.push({ name, stop });
  }

  /** Resolves with one line per thing that failed to stop (never rejects). */
  async stopAll(): Promise<string[]> {
    const problems: string[] = [];
    for (let next = this.stack.pop(); next !== undefined; next = this.stack.pop()) {
      try {
        await next.stop();
      } catch (err) {
        problems.push(`${next.name}: ${(err as Error).message}`);
      }
    }
    return problems;
  }
}

import { performance } from 'node:perf_hooks';

// The numbered steps the demo prints: `[3/6] starting orders ... done (127.0.0.1:40211, 84 ms)`. A step that
// takes longer than a second prints a dot a second, so a long wait is visibly alive.

export class Progress {
  private index = 0;
  private interrupted = false;
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WritableStream,
  ) {}

  /** Runs one step; once interrupted, no further step starts (it rejects instead). */
  async step<T>(label: string, run: () => Promise<T>, detail?: (value: T) => string): Promise<T> {
    if (this.interrupted) throw new Error('interrupted');
    this.index += 1;
    const started = performance.now();
    this.out.write(`[${this.index}/${this.total}] ${label} ...`);
    this.ticker = setInterval(() => this.out.write('.'), 1000);
    try {
      const value = await run();
      this.finish(` done (${detail ? `${detail(value)}, ` : ''}${formatElapsed(performance.now() - started)})`);
      return value;
    } catch (err) {
      this.finish(' failed');
      throw err;
    }
  }

  /** Ends the current line for good: what a step still running prints afterwards is dropped, and no step follows. */
  interrupt(): void {
    if (this.ticker !== undefined) this.finish('');
    this.interrupted = true;
  }

  private finish(text: string): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    if (!this.interrupted) this.out.write(`${text}\n`);
  }
}

export function formatElapsed(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

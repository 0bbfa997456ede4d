// Work that takes turns: items added while one batch is being done go together in the next one, and batches run
// one at a time, in order. For work that pays a lock and a durable write per batch: a busy CA pays them once per
// batch, not once per item, and between batches the lock is free for other processes.

export class Batches<T> {
  /** The batch still taking items: it has not started. */
  private open: { items: T[]; done: Promise<void> } | undefined;
  private previous: Promise<unknown> = Promise.resolve();

  constructor(private readonly run: (items: T[]) => Promise<void>) {}

  /** Settles as the batch that `item` goes into does. */
  add(item: T): Promise<void> {
    let batch = this.open;
    if (batch === undefined) {
      const items: T[] = [];
      const done = this.previous.then(() => {
        this.open = undefined;
        return this.run(items);
      });
      batch = this.open = { items, done };
      this.previous = done.catch(() => undefined);
    }
    batch.items.push(item);
    return batch.done;
  }

  /** Whether a batch is waiting for the one being done: asked from inside `run`, whether to keep what it holds. */
  get waiting(): boolean {
    return this.open !== undefined;
  }

  /** Resolves once every batch begun so far is over, whatever its outcome. */
  settled(): Promise<unknown> {
    return this.previous;
  }
}

import { watchFiles } from '../config/index.js';
import type { ParseResult } from '../spiffe/index.js';
import { readFileSet } from './pem-files.js';

// Files that only make sense together (a certificate chain and its key; an SVID, its key and the trust bundle),
// written by someone else. Writers replace them in several steps (cert, then key; or a Kubernetes `..data` symlink
// swap), so the set is read again once their directories have been quiet for a moment, checked as a whole, and put
// in force only when it holds together: a set that does not is refused while the last good one stays.

export interface FileSetOptions<T> {
  /** Each file with what it holds, for errors: [path, 'certificate']. */
  files: ReadonlyArray<readonly [string, string]>;
  /** What the contents (in the order of `files`) make, or why they are no use now; errors name the file to fix. */
  check(contents: string[], now: Date): ParseResult<T>;
  /** Whether two loads hold the same material (a rewrite of the same files is no change). */
  same(a: T, b: T): boolean;
  /** How long the directories must be quiet before the files are read again (default 150 ms). */
  debounceMs?: number;
  /** A new set is in force. */
  changed(value: T): void;
  /** A new set was refused (why, and how many have been so far); the last good one stays. */
  rejected(error: string, rejectedSoFar: number): void;
  /** A directory cannot be watched: changes there are seen only on reload(). */
  cannotWatch(directory: string, err: Error): void;
}

export interface FileSetStats {
  /** New sets put in force after the first. */
  reloads: number;
  /** New sets refused (the last good one stayed in force). */
  rejected: number;
}

const DEFAULT_DEBOUNCE_MS = 150;

export class WatchedFileSet<T> {
  private value!: T;
  private readonly counters: FileSetStats = { reloads: 0, rejected: 0 };
  private stopWatching: () => void = () => undefined;
  /** Reloads run one after another, never overlapping. */
  private queue: Promise<void> = Promise.resolve();
  /** Hash of the raw files last loaded or refused, so that an event that changed none of them does nothing. */
  private lastSeen: string | undefined;
  private closed = false;

  private constructor(private readonly opts: FileSetOptions<T>) {}

  /** Resolves once the files are loaded; rejects, naming the file and the reason, when they do not hold together. */
  static async open<T>(opts: FileSetOptions<T>): Promise<WatchedFileSet<T>> {
    const set = new WatchedFileSet(opts);
    // Watching before the first read: a write that lands while it is under way still triggers a reload.
    set.stopWatching = watchFiles(
      opts.files.map(([file]) => file),
      opts.debounceMs ?? DEFAULT_DEBOUNCE_MS,
      () => void set.reload(),
      (directory, err) => opts.cannotWatch(directory, err),
    );
    const first = set.loadFirst();
    set.queue = first.catch(() => undefined);
    try {
      await first;
    } catch (err) {
      await set.close();
      throw err;
    }
    return set;
  }

  get current(): T {
    return this.value;
  }

  stats(): FileSetStats {
    return { ...this.counters };
  }

  /** Reads the files again (after any reload under way) and puts them in force if they changed and hold together. */
  reload(): Promise<void> {
    this.queue = this.queue.then(() => this.reloadOnce());
    return this.queue;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    await this.queue;
  }

  private async loadFirst(): Promise<void> {
    const { contents, hash } = await readFileSet(this.opts.files);
    const checked = this.opts.check(contents, new Date());
    if (!checked.ok) throw new Error(checked.error);
    this.lastSeen = hash;
    this.value = checked.value;
  }

  private async reloadOnce(): Promise<void> {
    if (this.closed) return;
    let read: Awaited<ReturnType<typeof readFileSet>>;
    try {
      read = await readFileSet(this.opts.files);
    } catch (err) {
      // Forget what was seen: the file may reappear with the very content it had before it went.
      this.lastSeen = undefined;
      this.reject((err as Error).message);
      return;
    }
    if (read.hash === this.lastSeen || this.closed) return;
    this.lastSeen = read.hash;
    const checked = this.opts.check(read.contents, new Date());
    if (!checked.ok) {
      this.reject(checked.error);
      return;
    }
    if (this.opts.same(this.value, checked.value)) return;
    this.value = checked.value;
    this.counters.reloads += 1;
    this.opts.changed(checked.value);
  }

  private reject(error: string): void {
    this.counters.rejected += 1;
    this.opts.rejected(error, this.counters.rejected);
  }
}

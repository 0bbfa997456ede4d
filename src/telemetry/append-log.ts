import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';

// An append-only JSON-lines file with group commit: records appended while a write is in flight are written
// together in one synchronous-data write, and each append resolves only once its record is on disk. Acknowledge after the await and
// a crash loses nothing that was acknowledged, at thousands of records per second.
//
// A log whose records are written after the answer they describe (the sidecar's and the authz server's audit)
// can let each record wait a few milliseconds for others (commitDelayMs), and need not wait for the disk on every
// write (syncIntervalMs): its writes go to the kernel, which a crash of the process cannot lose, and an fdatasync
// puts them on disk at most that long after, against a power loss. A synchronous-data write costs a journal commit
// each time: at 1,000 requests/s in bench/hop.mjs (issue 12, a busy run), the inbound sidecar's CPU per request was
// 468-485 µs with one every 5 ms and 396-415 µs with one every 100 ms.

export interface AppendLogOptions {
  /**
   * How long a record may wait for its write so that later ones share it. 0 (the default): the next turn of the
   * event loop, for records someone waits on before answering (the CA's).
   */
  commitDelayMs?: number;
  /**
   * Write without waiting for the disk, and fdatasync at most this long after a write. Unset (the default): every
   * write waits for the disk (O_DSYNC), and an append resolves once its record is on disk; set, it resolves once its
   * record is written to the kernel.
   */
  syncIntervalMs?: number;
  /** Hears of a failed write of records appended with `enqueue`, which nobody awaits. */
  onError?: (err: Error, records: number) => void;
}

interface Entry {
  line: string;
  /** Undefined for an enqueued line: a failure goes to onError. */
  settle?: (err?: Error) => void;
}

export class AppendLog {
  private pending: Entry[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private commitDelayMs: number;

  private constructor(
    private readonly handle: FileHandle,
    readonly file: string,
    private readonly opts: AppendLogOptions,
  ) {
    this.commitDelayMs = opts.commitDelayMs ?? 0;
  }

  static async open(file: string, opts: AppendLogOptions = {}): Promise<AppendLog> {
    // O_DSYNC: a write returns once its data is on disk, as write + fdatasync would, in one trip to the thread
    // pool instead of two (the audit log's CPU cost per request in the sidecar fell by about a quarter).
    const sync = opts.syncIntervalMs === undefined ? constants.O_DSYNC : 0;
    return new AppendLog(await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | sync, 0o600), file, opts);
  }

  append(record: object): Promise<void> {
    return this.appendLine(JSON.stringify(record));
  }

  /** Appends one line (without its newline) exactly as given; resolves once it is on disk. */
  appendLine(text: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.file} is closed`));
    return new Promise((resolve, reject) => this.push({ line: `${text}\n`, settle: (err) => (err ? reject(err) : resolve()) }));
  }

  /** Appends one line that nobody waits for: no promise per record; a failed write goes to onError. */
  enqueueLine(text: string): void {
    if (this.closed) {
      this.opts.onError?.(new Error(`${this.file} is closed`), 1);
      return;
    }
    this.push({ line: `${text}\n` });
  }

  private push(entry: Entry): void {
    this.pending.push(entry);
    this.schedule();
  }

  /** Starts the next write: every record appended until then shares it. */
  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    if (this.commitDelayMs > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.commitDelayMs);
    } else {
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    let error: Error | undefined;
    try {
      await this.handle.write(batch.map((e) => e.line).join(''));
    } catch (err) {
      error = err as Error;
    }
    let unwatched = 0;
    for (const entry of batch) {
      if (entry.settle) entry.settle(error);
      else unwatched++;
    }
    if (error && unwatched > 0) this.opts.onError?.(error, unwatched);
    if (!error) this.scheduleSync();
    this.flushing = false;
    if (this.pending.length > 0) this.schedule();
  }

  /** Without O_DSYNC: one fdatasync for every write of the next syncIntervalMs. */
  private scheduleSync(): void {
    if (this.opts.syncIntervalMs === undefined || this.syncTimer !== undefined) return;
    this.syncTimer = setTimeout(() => void this.sync(), this.opts.syncIntervalMs);
  }

  private async sync(): Promise<void> {
    this.syncTimer = undefined;
    await this.handle.datasync().catch((err: unknown) => this.opts.onError?.(err as Error, 0));
  }

  async close(): Promise<void> {
    this.closed = true;
    // What is queued is written now, not after the commit delay.
    this.commitDelayMs = 0;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
    }
    while (this.flushing || this.pending.length > 0) await new Promise((r) => setImmediate(r));
    if (this.syncTimer !== undefined) {
      clearTimeout(this.syncTimer);
      await this.sync();
    }
    await this.handle.close();
  }
}

export interface ReadRecords<T> {
  records: T[];
  /** A last line without its newline: a write that a crash cut short. It was never acknowledged. */
  tornTail?: string;
}

/** Reads a JSON-lines file written by AppendLog; a missing file is empty. A bad line other than a torn tail throws. */
export async function readRecords<T>(file: string): Promise<ReadRecords<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [] };
    throw err;
  }
  return parseRecords(text, file);
}

/** Parses JSON lines as AppendLog writes them: `text` from `file`, whose first line is line `firstLine` of it. */
export function parseRecords<T>(text: string, file: string, firstLine = 1): ReadRecords<T> {
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const records = lines.map((line, i) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`${file}: line ${firstLine + i} is not valid JSON`);
    }
  });
  return last === '' ? { records } : { records, tornTail: last };
}

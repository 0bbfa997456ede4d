import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { ConfigError, fileProblem, watchFiles } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';

// A file a filter takes its data from (API key hashes, an OpenAPI document, an IP list), reloaded when it changes.
// Invalid content at start is fatal (a ConfigError naming the file); invalid content later is logged and the last
// good data stays in force, so that a half-written edit never opens or closes the door by accident.

/** Turns the file's text into the filter's data; throws an Error whose message says where in the file and why. */
export type FileParser<T> = (text: string, file: string) => T | Promise<T>;

/** Editors and Kubernetes ConfigMap updates change a file in several steps; act once they settle. */
const DEBOUNCE_MS = 150;

interface WatchedFileEvents {
  /** New content is in force. */
  loaded: [];
  /** New content was refused (the reason); the last good stays. */
  rejected: [string];
}

export class WatchedFile<T> extends EventEmitter<WatchedFileEvents> {
  private stopWatching: () => void = () => undefined;
  /** Reloads run one after another, never overlapping. */
  private reloads: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly parse: FileParser<T>,
    private readonly logger: Logger,
    /** What the file holds, for the log: `API keys`, `OpenAPI document`, `IP list`. */
    private readonly what: string,
    private data: T,
    /** Hash of the content last loaded or refused: a change elsewhere in the directory is no reload. */
    private lastSeen: string,
  ) {
    super();
  }

  /** Loads the file (invalid: a ConfigError) and watches it. */
  static async open<T>(file: string, parse: FileParser<T>, logger: Logger, what: string, debounceMs = DEBOUNCE_MS): Promise<WatchedFile<T>> {
    const text = await readFile(file, 'utf8').catch((err: unknown) => {
      throw new ConfigError(file, [{ path: [], message: fileProblem(err) }]);
    });
    let data: T;
    try {
      data = await parse(text, file);
    } catch (err) {
      throw err instanceof ConfigError ? err : new ConfigError(file, [{ path: [], message: (err as Error).message }]);
    }
    const watched = new WatchedFile(file, parse, logger, what, data, hash(text));
    watched.watch(debounceMs);
    return watched;
  }

  get current(): T {
    return this.data;
  }

  /** Reads the file again now (after any reload under way); unchanged content is no reload. */
  reload(): Promise<void> {
    this.reloads = this.reloads.then(() => this.reloadOnce());
    return this.reloads;
  }

  close(): void {
    this.stopWatching();
    this.removeAllListeners();
  }

  private async reloadOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      this.refuse(fileProblem(err));
      return;
    }
    const seen = hash(text);
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    try {
      this.data = await this.parse(text, this.file);
    } catch (err) {
      this.refuse((err as Error).message);
      return;
    }
    this.logger.info({ file: this.file }, `${this.what} reloaded`);
    this.emit('loaded');
  }

  private refuse(reason: string): void {
    this.logger.error({ file: this.file, error: reason }, `${this.what} rejected; the last good one stays in force`);
    this.emit('rejected', reason);
  }

  private watch(debounceMs: number): void {
    const failed = (_directory: string, err: Error) => this.logger.warn({ file: this.file, err: err.message }, `cannot watch the ${this.what}; changes are not picked up`);
    this.stopWatching = watchFiles([this.file], debounceMs, () => void this.reload(), failed);
  }
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

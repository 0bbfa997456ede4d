import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError, fileProblem, isWatchedFileEvent } from '../config/index.js';
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
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
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
    clearTimeout(this.debounce);
    this.watcher?.close();
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

  /** The directory, not the file: writers rename over files (a new inode), which a watch on the file would miss. */
  private watch(debounceMs: number): void {
    const names = new Set([basename(this.file)]);
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, filename) => {
        if (!isWatchedFileEvent(filename, names)) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), debounceMs);
      });
      this.watcher.on('error', (err) => this.logger.warn({ file: this.file, err: err.message }, `watching the ${this.what} failed; changes are not picked up`));
    } catch (err) {
      this.logger.warn({ file: this.file, err: (err as Error).message }, `cannot watch the ${this.what}; changes are not picked up`);
    }
  }
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

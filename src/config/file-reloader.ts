// Keeps a config file in force: loads it at start, reloads it when the file changes or on request (SIGHUP), and
// keeps the last good one when a new one is invalid. Readers take `current` once per use, so that a reload never
// mixes two versions inside one decision. The policy (authz) and the rate-limit config (ratelimit) both use it.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { watchFiles } from './file-watch.js';

/** Loads a file; throws a ConfigError (file: path: reason) when it is invalid. */
export type FileLoader<T> = (file: string) => T | Promise<T>;

export interface ReloadStats {
  /** New versions put in force after start. */
  reloads: number;
  /** New versions refused as invalid (the last good one stayed in force). */
  rejected: number;
}

export type ReloadTrigger = 'file change' | 'SIGHUP';

export interface FileReloaderOptions {
  /** What the file holds, for log lines: "policy" logs "policy reloaded". */
  what: string;
  /** Editors and Kubernetes ConfigMap updates change a file in several steps; act once they settle. */
  debounceMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 150;

export class FileReloader<T> {
  private readonly counters: ReloadStats = { reloads: 0, rejected: 0 };
  private stopWatching: () => void = () => undefined;
  /** Reloads run one after another, never overlapping. */
  private reloads: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly load: FileLoader<T>,
    private readonly logger: Logger,
    private readonly what: string,
    private active: T,
    /** Hash of the content last loaded or refused, so that a change elsewhere in the directory is ignored. */
    private lastSeen: string,
  ) {}

  /** Loads the file (a ConfigError propagates: an invalid file at start is fatal) and starts watching it. */
  static async start<T>(file: string, load: FileLoader<T>, logger: Logger, options: FileReloaderOptions): Promise<FileReloader<T>> {
    // The path as given, so that errors name the file as the user wrote it. Hashed before loading: if the file
    // changes in between, the next event sees new content and reloads.
    const seen = await contentHash(file).catch(() => '');
    const reloader = new FileReloader(file, load, logger, options.what, await load(file), seen);
    logger.info({ file }, `${options.what} loaded`);
    reloader.watch(options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    return reloader;
  }

  get current(): T {
    return this.active;
  }

  stats(): ReloadStats {
    return { ...this.counters };
  }

  /**
   * Reloads after any reload already under way. A file change reloads only when the content differs from what
   * was last seen; SIGHUP always does.
   */
  reload(trigger: ReloadTrigger): Promise<void> {
    this.reloads = this.reloads.then(() => this.reloadOnce(trigger));
    return this.reloads;
  }

  close(): void {
    this.stopWatching();
  }

  private async reloadOnce(trigger: ReloadTrigger): Promise<void> {
    // A file that cannot be read is reported by the loader, which names it and the reason.
    const seen = await contentHash(this.file).catch(() => '');
    if (trigger === 'file change' && seen !== '' && seen === this.lastSeen) return;
    this.lastSeen = seen;
    try {
      this.active = await this.load(this.file);
      this.counters.reloads += 1;
      this.logger.info({ file: this.file, trigger, reloads: this.counters.reloads }, `${this.what} reloaded`);
    } catch (err) {
      this.counters.rejected += 1;
      this.logger.error(
        { file: this.file, trigger, rejected: this.counters.rejected, error: err instanceof Error ? err.message : String(err) },
        `${this.what} rejected; the last good ${this.what} stays in force`,
      );
    }
  }

  private watch(debounceMs: number): void {
    const failed = (_directory: string, err: Error) => this.logger.warn({ file: this.file, err: err.message }, `cannot watch the ${this.what} file; reload with SIGHUP`);
    this.stopWatching = watchFiles([this.file], debounceMs, () => void this.reload('file change'), failed);
  }
}

async function contentHash(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

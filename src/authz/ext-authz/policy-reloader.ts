// Keeps the policy in force: loads it at start, reloads it when its file changes or on request (SIGHUP), and
// keeps the last good one when a new one is invalid. Calls read `current` once each, so a reload never mixes
// two policies inside one decision.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { isWatchedFileEvent } from '../../config/index.js';
import type { Logger } from '../../telemetry/index.js';
import type { PolicyEngine } from '../types.js';

export interface ActivePolicy {
  engine: PolicyEngine;
  /** The policy's `explainDenials`: whether denials may name the deciding rule. */
  explainDenials: boolean;
}

/** Loads and compiles a policy file; throws a ConfigError (file: path: reason) when it is invalid. */
export type PolicyLoader = (file: string) => ActivePolicy | Promise<ActivePolicy>;

export interface PolicyReloadStats {
  /** New policies put in force after start. */
  reloads: number;
  /** New policies refused as invalid (the last good one stayed in force). */
  rejected: number;
}

export type ReloadTrigger = 'file change' | 'SIGHUP';

/** Editors and Kubernetes ConfigMap updates change a file in several steps; act once they settle. */
const DEFAULT_DEBOUNCE_MS = 150;

export class PolicyReloader {
  private readonly counters: PolicyReloadStats = { reloads: 0, rejected: 0 };
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** Reloads run one after another, never overlapping. */
  private reloads: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly load: PolicyLoader,
    private readonly logger: Logger,
    private active: ActivePolicy,
    /** Hash of the content last loaded or refused, so that a change elsewhere in the directory is ignored. */
    private lastSeen: string,
  ) {}

  /** Loads the policy (a ConfigError propagates: an invalid policy at start is fatal) and starts watching it. */
  static async start(file: string, load: PolicyLoader, logger: Logger, debounceMs = DEFAULT_DEBOUNCE_MS): Promise<PolicyReloader> {
    // The path as given, so that errors name the file as the user wrote it. Hashed before loading: if the file
    // changes in between, the next event sees new content and reloads.
    const seen = await contentHash(file).catch(() => '');
    const reloader = new PolicyReloader(file, load, logger, await load(file), seen);
    logger.info({ file }, 'policy loaded');
    reloader.watch(debounceMs);
    return reloader;
  }

  get current(): ActivePolicy {
    return this.active;
  }

  stats(): PolicyReloadStats {
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
    clearTimeout(this.debounce);
    this.watcher?.close();
  }

  private async reloadOnce(trigger: ReloadTrigger): Promise<void> {
    // A file that cannot be read is reported by the loader, which names it and the reason.
    const seen = await contentHash(this.file).catch(() => '');
    if (trigger === 'file change' && seen !== '' && seen === this.lastSeen) return;
    this.lastSeen = seen;
    try {
      this.active = await this.load(this.file);
      this.counters.reloads += 1;
      this.logger.info({ file: this.file, trigger, reloads: this.counters.reloads }, 'policy reloaded');
    } catch (err) {
      this.counters.rejected += 1;
      this.logger.error(
        { file: this.file, trigger, rejected: this.counters.rejected, error: err instanceof Error ? err.message : String(err) },
        'policy rejected; the last good policy stays in force',
      );
    }
  }

  /**
   * Watches the directory, not the file: editors and ConfigMaps replace the file (a new inode), which a
   * watch on the file itself would stop seeing.
   */
  private watch(debounceMs: number): void {
    try {
      const names = new Set([basename(this.file)]);
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, filename) => {
        if (!isWatchedFileEvent(filename, names)) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload('file change'), debounceMs);
      });
      this.watcher.on('error', (err) => this.logger.warn({ file: this.file, err: err.message }, 'policy watch failed; reload with SIGHUP'));
    } catch (err) {
      this.logger.warn({ file: this.file, err: (err as Error).message }, 'cannot watch the policy file; reload with SIGHUP');
    }
  }
}

async function contentHash(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

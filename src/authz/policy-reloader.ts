// Keeps the policy in force (config/file-reloader.ts: loaded at start, reloaded on a file change or SIGHUP, the
// last good one kept when a new one is invalid). Calls read `current` once each, so that a reload never mixes two
// policies inside one decision.
import { FileReloader, type FileLoader, type ReloadStats } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import type { PolicyEngine } from './types.js';

export interface ActivePolicy {
  engine: PolicyEngine;
  /** The policy's `explainDenials`: whether denials may name the deciding rule. */
  explainDenials: boolean;
}

/** Loads and compiles a policy file; throws a ConfigError (file: path: reason) when it is invalid. */
export type PolicyLoader = FileLoader<ActivePolicy>;

export type PolicyReloadStats = ReloadStats;

export type PolicyReloader = FileReloader<ActivePolicy>;

export const PolicyReloader = {
  start: (file: string, load: PolicyLoader, logger: Logger, debounceMs?: number): Promise<PolicyReloader> =>
    FileReloader.start(file, load, logger, { what: 'policy', debounceMs }),
};

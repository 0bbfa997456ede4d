// The counter store a component's settings ask for: Redis when a URL is given (so that every replica counts into
// one total), this process's memory otherwise. The password and the CA are read here, once, at start.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { fileProblem, readSecretReference } from '../config/index.js';
import type { CounterStore, StoreError } from './counter-store.js';
import { MemoryCounterStore } from './memory-counter-store.js';
import { parseRedisUrl } from './redis-url.js';

export interface StoreSettings {
  /** redis://, rediss:// (TLS), `?cluster=true`; memory when absent. */
  url?: string;
  /** env:NAME or file:PATH. */
  password?: string;
  /** A PEM file of CA certificates for rediss://; the system's roots when absent. */
  caFile?: string;
  /** How long a count may take before the failure mode answers; 50 ms when absent. */
  timeoutMs?: number;
}

export const DEFAULT_STORE_TIMEOUT_MS = 50;

/** Throws an Error naming the setting at fault (a bad URL, an unset password variable, an unreadable CA file). */
export async function openCounterStore(settings: StoreSettings, context: { logger: Logger; onError?: (err: StoreError) => void }): Promise<CounterStore> {
  if (settings.url === undefined) {
    if (settings.password !== undefined || settings.caFile !== undefined) throw new Error('a Redis password or CA is given without a Redis URL');
    return new MemoryCounterStore();
  }
  const target = parseRedisUrl(settings.url);
  if (!target.ok) throw new Error(`Redis URL ${target.error}`);
  if (settings.caFile !== undefined && !target.value.tls) throw new Error('a Redis CA is given for a redis:// URL; use rediss:// for TLS');
  const password = settings.password === undefined ? undefined : await readSecretReference(settings.password).catch((err: Error) => {
    throw new Error(`Redis password (${settings.password}): ${err.message}`);
  });
  const ca = settings.caFile === undefined ? undefined : await readFile(settings.caFile).catch((err: unknown) => {
    throw new Error(`Redis CA ${settings.caFile}: ${fileProblem(err)}`);
  });
  // Loaded only when Redis is asked for: a process counting in memory never loads the Redis client.
  const { RedisCounterStore } = await import('./redis-counter-store.js');
  return RedisCounterStore.connect({
    target: target.value,
    ...(password === undefined ? {} : { password }),
    ...(ca === undefined ? {} : { ca }),
    timeoutMs: settings.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
    logger: context.logger,
    ...(context.onError ? { onError: context.onError } : {}),
  });
}

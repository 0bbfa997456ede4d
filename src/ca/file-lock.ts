import { stat, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';

// The lock that meshward processes sharing a CA directory take turns under: proper-lockfile's (a directory
// PATH.lock made atomically, its mtime kept fresh while held, stale 10 s after its holder stopped refreshing it).
// It works on the local and network file systems a CA directory may live on, where flock may not, and between
// the threads and instances of one process as between processes.
//
// A process that finds the lock taken says so while it waits, by touching PATH.lock-wanted: a holder that keeps
// the lock across many pieces of work (the CA's audit log, shared-audit-log.ts) looks for it and steps aside, so
// an offline `ca issue` is not starved by a busy `ca serve`. mkdir locks have no queue of their own.

const STALE_MS = 10_000;
/** How long to wait for another holder's turn: past the point where a crashed holder's lock goes stale. Retried here, not by proper-lockfile, which would also retry errors that last (a missing directory). */
const WAIT_MS = STALE_MS + 5_000;
/** The longest pause between two tries while waiting: shorter than the turn a leasing holder gives. */
const MAX_RETRY_MS = 10;
/** A PATH.lock-wanted touched longer ago than this is a waiter that is gone (it crashed, or got its turn). */
const WANTED_FRESH_MS = 1_000;

/** A lock held until released: for a holder that does several pieces of work under one acquisition. */
export interface HeldLock {
  /** Why the lock may have been taken by another process meanwhile (judged stale); what was done since is in doubt. */
  lost(): Error | undefined;
  release(): Promise<void>;
}

/**
 * Runs `fn` holding the lock on `path` (which need not exist). If another process took the lock meanwhile, judging
 * it stale, what `fn` did is in doubt: the call fails (fail closed) instead of proper-lockfile's default of
 * throwing from a timer, which would kill the process.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireFileLock(path);
  try {
    const result = await fn();
    const lost = lock.lost();
    if (lost) throw new Error(`lost the lock on ${path}: ${lost.message}`);
    return result;
  } finally {
    await lock.release();
  }
}

/** Takes the lock on `path`, waiting for another holder's turn; the caller must release it. */
export async function acquireFileLock(path: string): Promise<HeldLock> {
  let compromised: Error | undefined;
  const release = await acquire(path, (err) => (compromised = err));
  return { lost: () => compromised, release: () => release().catch(() => undefined) };
}

/** Whether another process is waiting for the lock on `path` now: a holder that keeps it long should let go. */
export async function othersWaitFor(path: string): Promise<boolean> {
  try {
    return (await stat(wantedFile(path))).mtimeMs > Date.now() - WANTED_FRESH_MS;
  } catch {
    return false;
  }
}

async function acquire(path: string, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  const deadline = Date.now() + WAIT_MS;
  let waited = false;
  try {
    for (let backoff = 2; ; backoff = Math.min(backoff * 2, MAX_RETRY_MS)) {
      try {
        return await lockfile.lock(path, { realpath: false, stale: STALE_MS, onCompromised });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw err;
        waited = true;
        // Best effort: a holder that never hears of us still lets go after each piece of work or its lease.
        await writeFile(wantedFile(path), '').catch(() => undefined);
        await sleep(backoff);
      }
    }
  } finally {
    // Another waiter, if any, touches it again at its next try.
    if (waited) await unlink(wantedFile(path)).catch(() => undefined);
  }
}

function wantedFile(path: string): string {
  return `${path}.lock-wanted`;
}

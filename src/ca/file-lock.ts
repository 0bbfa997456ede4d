import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';

// The lock that meshward processes sharing a CA directory take turns under: proper-lockfile's (a directory
// PATH.lock made atomically, its mtime kept fresh while held, stale 10 s after its holder stopped refreshing it).
// It works on the local and network file systems a CA directory may live on, where flock may not, and between
// the threads and instances of one process as between processes.

const STALE_MS = 10_000;
/** How long to wait for another holder's turn: past the point where a crashed holder's lock goes stale. Retried here, not by proper-lockfile, which would also retry errors that last (a missing directory). */
const WAIT_MS = STALE_MS + 5_000;

/**
 * Runs `fn` holding the lock on `path` (which need not exist). If another process took the lock meanwhile, judging
 * it stale, what `fn` did is in doubt: the call fails (fail closed) instead of proper-lockfile's default of
 * throwing from a timer, which would kill the process.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  let compromised: Error | undefined;
  const release = await acquire(path, (err) => (compromised = err));
  try {
    const result = await fn();
    if (compromised) throw new Error(`lost the lock on ${path}: ${compromised.message}`);
    return result;
  } finally {
    await release().catch(() => undefined);
  }
}

async function acquire(path: string, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  const deadline = Date.now() + WAIT_MS;
  for (let backoff = 5; ; backoff = Math.min(backoff * 2, 100)) {
    try {
      return await lockfile.lock(path, { realpath: false, stale: STALE_MS, onCompromised });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw err;
      await sleep(backoff);
    }
  }
}

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { isWatchedFileEvent } from './watch-filter.js';

// Watching files that others replace (a policy, an SVID, a certificate, a filter's data): the directories are watched,
// not the files, because writers rename new files over the old ones (a new inode) and Kubernetes Secret and ConfigMap
// volumes swap a `..data` symlink, neither of which a watch on the file itself would see. Writers also change a file
// in several steps (cert, then key), so `changed` is called once the events have been quiet for a moment.

/**
 * Calls `changed` once events about `files` have been quiet for `debounceMs`. A directory that cannot be watched is
 * reported to `failed` (the files are then read only when asked to). Returns what stops it all.
 */
export function watchFiles(files: readonly string[], debounceMs: number, changed: () => void, failed: (directory: string, err: Error) => void): () => void {
  const directories = new Map<string, Set<string>>();
  for (const file of files) {
    const directory = dirname(resolve(file));
    directories.set(directory, (directories.get(directory) ?? new Set()).add(basename(file)));
  }
  let debounce: NodeJS.Timeout | undefined;
  let closed = false;
  const watchers: FSWatcher[] = [];
  for (const [directory, names] of directories) {
    try {
      const watcher = watch(directory, { persistent: false }, (_event, filename) => {
        if (closed || !isWatchedFileEvent(filename, names)) return;
        clearTimeout(debounce);
        debounce = setTimeout(changed, debounceMs);
      });
      watcher.on('error', (err) => failed(directory, err));
      watchers.push(watcher);
    } catch (err) {
      failed(directory, err as Error);
    }
  }
  return () => {
    closed = true;
    clearTimeout(debounce);
    for (const watcher of watchers) watcher.close();
  };
}

// Which directory-watch events are about the files a watcher cares about. Directories are watched rather than the
// files themselves (writers rename over files, and Kubernetes swaps a `..data` symlink), but a directory may also
// hold files that change all the time, such as a log: reacting to every event there would keep a debounce from
// ever settling, and a changed policy or SVID would never be picked up while traffic flows.

/** True for an event naming one of `names`, a Kubernetes atomic-writer entry (`..data`, `..2026_…`), or no name. */
export function isWatchedFileEvent(filename: string | Buffer | null | undefined, names: ReadonlySet<string>): boolean {
  if (filename === null || filename === undefined) return true;
  const name = filename.toString();
  return names.has(name) || name.startsWith('..');
}

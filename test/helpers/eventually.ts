/** Polls `check` until it holds or `ms` pass; for state another process changes. Resolves with whether it held. */
export async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

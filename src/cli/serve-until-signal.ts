import type { Logger } from '../telemetry/index.js';

/**
 * A long-running server's life after start: SIGHUP calls `reload`, SIGTERM or SIGINT stops it (calls in flight get
 * `graceMs`), and the exit code is 0.
 */
export async function serveUntilSignal(server: { close(graceMs: number): Promise<void> }, reload: () => void, logger: Logger, graceMs: number): Promise<number> {
  process.on('SIGHUP', reload);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.off('SIGHUP', reload);
  logger.info({ signal }, 'shutting down');
  await server.close(graceMs);
  logger.info('stopped');
  logger.flush();
  return 0;
}

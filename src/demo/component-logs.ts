import { openSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { createLogger } from '../telemetry/index.js';

// Where the demo's components (CA, sidecars) log: a file in the demo directory, so that the terminal shows only
// the demo's own story; or stderr with --verbose, exactly as the real commands log.

export interface ComponentLogs {
  readonly file: string | undefined;
  logger(component: string): Logger;
  close(): void;
}

export function componentLogs(file: string | undefined): ComponentLogs {
  if (file === undefined) return { file, logger: (component) => createLogger(component), close: () => undefined };
  // Synchronous writes: the file is read back (on failure) and removed right after the components stop.
  const destination = pino.destination({ dest: openSync(file, 'a', 0o600), sync: true });
  return {
    file,
    logger: (component) => createLogger(component, {}, destination),
    close: () => destination.end(),
  };
}

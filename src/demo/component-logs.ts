import { openSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { createLogger, REDACT_PATHS } from '../telemetry/logger.js';
import { redactString, redactValue } from '../telemetry/redact.js';

// Where the demo's components (CA, sidecars) log: a file in the demo directory, so that the terminal shows only
// the demo's own story; or stderr with --verbose, exactly as the real commands log. createLogger always writes to
// stderr (it takes no destination), so the file variant builds the same options around a file descriptor.

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
    logger: (component) =>
      pino(
        {
          name: 'meshward',
          level: process.env.MESHWARD_LOG_LEVEL ?? 'info',
          base: { component },
          redact: { paths: REDACT_PATHS, censor: '[redacted]' },
          timestamp: pino.stdTimeFunctions.isoTime,
          formatters: { level: (label) => ({ level: label }), log: (object) => redactValue(object) as Record<string, unknown> },
          hooks: {
            logMethod(args, method) {
              method.apply(this, args.map((a) => (typeof a === 'string' ? redactString(a) : a)) as Parameters<typeof method>);
            },
          },
        },
        destination,
      ),
    close: () => destination.end(),
  };
}

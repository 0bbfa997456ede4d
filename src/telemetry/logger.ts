import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactString, redactValue } from './redact.js';

// One logger, configured here. JSON lines to stderr so that stdout stays free for a command's output.
// Two layers of redaction: by field name (pino's fast `redact` paths: credential headers, tokens, keys) and by
// value (redact.ts: JWTs, bearer credentials, query-string secrets and PEM private keys anywhere in a record or
// its message).
export const REDACT_PATHS = [
  'token',
  'joinToken',
  'passphrase',
  'key',
  'privateKey',
  '*.token',
  '*.joinToken',
  '*.passphrase',
  '*.privateKey',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers["proxy-authorization"]',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["x-api-key"]',
];

/** `destination` defaults to stderr, written asynchronously. */
export function createLogger(component: string, options: LoggerOptions = {}, destination: DestinationStream = pino.destination({ dest: 2, sync: false })): Logger {
  return pino(
    {
      name: 'meshward',
      level: process.env.MESHWARD_LOG_LEVEL ?? options.level ?? 'info',
      base: { component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (object) => redactValue(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactString(a) : a)) as Parameters<typeof method>);
        },
      },
      ...options,
    },
    destination,
  );
}

export type { Logger };

import { pino, type DestinationStream, type Logger } from 'pino';
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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * `destination` defaults to stderr, written asynchronously. The level: MESHWARD_LOG_LEVEL when set (the knob an
 * operator turns without editing config), else `options.level` (a component's config), else info.
 */
export function createLogger(component: string, options: { level?: LogLevel } = {}, destination: DestinationStream = pino.destination({ dest: 2, sync: false })): Logger {
  const fromEnv = process.env.MESHWARD_LOG_LEVEL?.trim();
  if (fromEnv && !(LOG_LEVELS as readonly string[]).includes(fromEnv)) {
    throw new Error(`MESHWARD_LOG_LEVEL: "${fromEnv}" is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
  }
  return pino(
    {
      name: 'meshward',
      level: fromEnv || options.level || 'info',
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
  );
}

export type { Logger };

import { pino, type Logger, type LoggerOptions } from 'pino';

// One logger, configured here. JSON lines to stderr so that stdout stays free for a command's output.
// Redaction removes credentials wherever the usual field names carry them; callers must still never pass
// key material or tokens as free text.
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

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: 'meshward',
      level: process.env.MESHWARD_LOG_LEVEL ?? options.level ?? 'info',
      base: { component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...options,
    },
    pino.destination({ dest: 2, sync: false }),
  );
}

export type { Logger };

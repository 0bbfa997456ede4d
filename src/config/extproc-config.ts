import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from './load.js';
import { defaultLimits, filterEntry, headersWithUnderscores, type FilterEntry } from './sidecar-schema.js';
import { strictObject } from './strict-object.js';

// `meshward extproc --config FILE`: the chain Envoy's ext_proc filter runs, written as a sidecar listener's is.
//
//   filters:                    # exactly a listener's `filters:` list (docs/filters.md)
//     - cors: { allowOrigins: [https://app.example.com] }
//     - apiKey: { keysFile: keys.yaml }
//   limits: { maxHeaderBytes: 16384, maxBodyBytes: 1048576 }   # optional
//   headersWithUnderscores: drop                               # optional, as on a listener
//
// Only the limits a request's headers and body are held to apply: connections, timeouts and HTTP/2 streams are
// Envoy's to limit (its listener and HTTP connection manager), so they are refused here rather than ignored.

const bytes = (what: string, max: number) =>
  z.number().int(`${what} must be a whole number of bytes`).min(1, `${what} must be at least 1 byte`).max(max, `${what} must be at most ${max} bytes`);

const limits = strictObject({
  /** Request line and headers together; larger is answered 431. */
  maxHeaderBytes: bytes('maxHeaderBytes', 1024 * 1024).default(defaultLimits.maxHeaderBytes),
  /** A declared body larger is answered 413, and so is a body a filter reads. */
  maxBodyBytes: bytes('maxBodyBytes', 1024 * 1024 * 1024).default(defaultLimits.maxBodyBytes),
});

export const extProcConfigSchema = strictObject({
  filters: z.array(filterEntry).default([]),
  limits: limits.default({ maxHeaderBytes: defaultLimits.maxHeaderBytes, maxBodyBytes: defaultLimits.maxBodyBytes }),
  headersWithUnderscores,
});

export type ExtProcConfig = z.output<typeof extProcConfigSchema> & {
  /** The config file's directory: the filters' relative file paths start here. */
  configDir: string;
};

/**
 * Reads and validates the file; throws ConfigError naming file, path and reason. A custom filter's module is
 * resolved against the file's directory, as every other file a filter names is.
 */
export function loadExtProcConfig(file: string): ExtProcConfig {
  const config = loadYamlFile(file, extProcConfigSchema);
  const configDir = dirname(resolve(file));
  const filters = config.filters.map((entry): FilterEntry => ('module' in entry && !isAbsolute(entry.module) ? { ...entry, module: resolve(configDir, entry.module) } : entry));
  return { ...config, filters, configDir };
}

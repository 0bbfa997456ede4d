import { dirname, isAbsolute, resolve } from 'node:path';
import { loadYamlFile } from './load.js';
import { sidecarConfigSchema, type SidecarConfig } from './sidecar-schema.js';

/**
 * Reads and validates `meshward sidecar --config FILE`. File paths inside it are relative to the file's own
 * directory, so a config means the same thing whatever directory the sidecar was started from.
 * Throws ConfigError (file: path: reason).
 */
export function loadSidecarConfig(file: string): SidecarConfig {
  const config = loadYamlFile(file, sidecarConfigSchema);
  const base = dirname(resolve(file));
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const { files, ca } = config.identity;
  if (files) config.identity.files = { cert: at(files.cert), key: at(files.key), bundle: at(files.bundle) };
  if (ca) {
    ca.bundle = at(ca.bundle);
    if (ca.token.startsWith('file:')) ca.token = `file:${at(ca.token.slice('file:'.length))}`;
  }
  if (config.inbound?.policy) config.inbound.policy = at(config.inbound.policy);
  if (config.audit) config.audit.path = at(config.audit.path);
  return config;
}

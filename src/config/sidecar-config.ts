import { accessSync, constants, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from './errors.js';
import { fileProblem, loadYamlFile } from './load.js';
import { inboundEntries, sidecarConfigSchema, type SidecarConfig } from './sidecar-schema.js';
import { checkSocketEndpoints } from './socket-endpoint.js';

/**
 * Reads and validates `meshward sidecar --config FILE`. File paths inside it are relative to the file's own
 * directory, so a config means the same thing whatever directory the sidecar was started from; every file it
 * reads from is checked here, so that a missing one is named (config, field, path as written and as resolved)
 * before anything starts. Throws ConfigError.
 */
export function loadSidecarConfig(file: string): SidecarConfig {
  const config = loadYamlFile(file, sidecarConfigSchema);
  const base = dirname(resolve(file));
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const problems: ConfigProblem[] = [];
  const input = (path: PropertyKey[], written: string): string => {
    const resolved = at(written);
    const problem = unreadable(resolved);
    if (problem) problems.push({ path, message: `file ${JSON.stringify(written)} ${problem}${resolved === written ? '' : ` (resolved to ${resolved})`}` });
    return resolved;
  };
  const { files, ca } = config.identity;
  if (files) {
    const field = (name: keyof typeof files) => input(['identity', 'files', name], files[name]);
    config.identity.files = { cert: field('cert'), key: field('key'), bundle: field('bundle') };
  }
  if (ca) {
    ca.bundle = input(['identity', 'ca', 'bundle'], ca.bundle);
    // The token file is read only when no kept SVID can be used, so it need not exist yet.
    if (ca.token.startsWith('file:')) ca.token = `file:${at(ca.token.slice('file:'.length))}`;
    ca.stateDir = at(ca.stateDir ?? `${basename(file, extname(file))}.state`);
  }
  // A custom filter's module is code the sidecar runs: it is named, and found, as every other file is.
  const modulesOf = (entries: Array<{ module?: string } | object> | undefined, path: Array<string | number>) =>
    entries?.forEach((entry, i) => {
      if ('module' in entry && typeof entry.module === 'string') entry.module = input([...path, 'filters', i, 'module'], entry.module);
    });
  for (const { inbound, path } of inboundEntries(config.inbound)) {
    if (inbound.policy) inbound.policy = input([...path, 'policy'], inbound.policy);
    modulesOf(inbound.filters, path);
  }
  modulesOf(config.outbound?.filters, ['outbound']);
  const edge = config.ingress;
  if (edge) {
    edge.tls = { ...edge.tls, cert: input(['ingress', 'tls', 'cert'], edge.tls.cert), key: input(['ingress', 'tls', 'key'], edge.tls.key) };
    modulesOf(edge.filters, ['ingress']);
  }
  if (config.audit) config.audit.path = at(config.audit.path);
  Object.assign(config, checkSocketEndpoints(config, at, problems));
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { ...config, configDir: base };
}

/** Why a file cannot be read, or undefined when it can. */
function unreadable(file: string): string | undefined {
  try {
    if (statSync(file).isDirectory()) return 'is a directory, not a file';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `cannot be read: ${fileProblem(err)}`;
  }
}

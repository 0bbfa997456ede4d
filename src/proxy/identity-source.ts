import { readFile } from 'node:fs/promises';
import { formatHostPort, type SidecarConfig } from '../config/index.js';
import { CaSvidSource, FileSvidSource, type SvidSource } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';

/** The SVID source the config names: watched files, or the meshward CA (bootstrapped with a join token). */
export async function startIdentitySource(config: SidecarConfig, logger: Logger): Promise<SvidSource> {
  const { files, ca } = config.identity;
  if (files) {
    return FileSvidSource.start({ certFile: files.cert, keyFile: files.key, bundleFile: files.bundle, trustDomain: config.trustDomain, logger });
  }
  const source = ca!;
  const bootstrapBundlePem = await readFile(source.bundle, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${source.bundle}: cannot read the CA bundle (identity.ca.bundle): ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
  });
  return CaSvidSource.start({
    address: formatHostPort(source.address),
    trustDomain: config.trustDomain,
    bootstrapBundlePem,
    spiffeId: source.spiffeId,
    joinToken: await readSecret(source.token, 'identity.ca.token'),
    ttlSeconds: Math.round(source.ttl / 1000),
    logger,
  });
}

/** `env:NAME` or `file:PATH`; the value is never logged, and an absent one is named. */
async function readSecret(ref: string, field: string): Promise<string> {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = process.env[name];
    if (!value) throw new Error(`${field}: the environment variable ${name} is not set`);
    return value.trim();
  }
  const file = ref.slice(5);
  const value = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${field}: cannot read ${file}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
  });
  if (value.trim() === '') throw new Error(`${field}: ${file} is empty`);
  return value.trim();
}

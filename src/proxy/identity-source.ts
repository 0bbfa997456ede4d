import { readFile } from 'node:fs/promises';
import { FieldError, fileProblem, formatHostPort, type SidecarConfig } from '../config/index.js';
import { FileSvidSource, startCaSvidSource, SvidStore, type SvidSource } from '../identity/index.js';
import { pemToDerList } from '../spiffe/index.js';
import type { Logger } from '../telemetry/index.js';

/** Starts the identity source; for the CA this may spend the join token, so it is called once all else is ready. */
export type IdentityStart = () => Promise<SvidSource>;

/**
 * Checks what the identity source the config names needs, without spending anything: the CA's bundle, the state
 * directory, and the token reference when no kept SVID can serve. Returns the function that starts it. Throws
 * FieldErrors naming the field.
 */
export async function prepareIdentitySource(config: SidecarConfig, logger: Logger): Promise<IdentityStart> {
  const { files, ca } = config.identity;
  if (files) {
    return () => FileSvidSource.start({ certFile: files.cert, keyFile: files.key, bundleFile: files.bundle, trustDomain: config.trustDomain, logger });
  }
  const source = ca!;
  const bootstrapBundlePem = await readBundle(source.bundle);
  const store = source.stateDir === undefined ? undefined : await openStore(source.stateDir);
  const common = {
    address: formatHostPort(source.address),
    trustDomain: config.trustDomain,
    bootstrapBundlePem,
    spiffeId: source.spiffeId,
    ttlSeconds: Math.round(source.ttl / 1000),
    startDeadlineMs: source.startDeadline,
    logger,
    ...(store ? { store } : {}),
  };
  const kept = await store?.load({ spiffeId: source.spiffeId, trustDomain: config.trustDomain, bundlePem: bootstrapBundlePem }, new Date());
  if (kept?.ok) return () => startCaSvidSource({ ...common, stored: kept.value });
  if (kept) logger.info({ stateDir: store!.dir, reason: kept.error }, 'the kept SVID cannot be used; the join token is needed');
  const without = store ? `, and no SVID kept in ${store.dir} can be used` : '';
  const joinToken = await readSecret(source.token, without);
  return () => startCaSvidSource({ ...common, joinToken });
}

async function readBundle(file: string): Promise<string> {
  const fail = (reason: string) => new FieldError(['identity', 'ca', 'bundle'], `${file}: ${reason}`);
  const pem = await readFile(file, 'utf8').catch((err: unknown) => {
    throw fail(fileProblem(err));
  });
  let roots: Buffer[];
  try {
    roots = pemToDerList(pem);
  } catch (err) {
    throw fail(`not a PEM certificate bundle: ${(err as Error).message}`);
  }
  if (roots.length === 0) throw fail('holds no PEM certificate');
  return pem;
}

async function openStore(dir: string): Promise<SvidStore> {
  return SvidStore.open(dir).catch((err: unknown) => {
    throw new FieldError(['identity', 'ca', 'stateDir'], `${dir}: cannot keep the SVID there: ${fileProblem(err)}`);
  });
}

/** `env:NAME` or `file:PATH`; the value is never logged, and an absent one is named. */
async function readSecret(ref: string, context: string): Promise<string> {
  const fail = (reason: string) => new FieldError(['identity', 'ca', 'token'], `${reason}${context}`);
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = process.env[name]?.trim();
    if (!value) throw fail(`the environment variable ${name} is not set`);
    return value;
  }
  const file = ref.slice(5);
  const value = await readFile(file, 'utf8').catch((err: unknown) => {
    throw fail(`cannot read ${file}: ${fileProblem(err)}`);
  });
  if (value.trim() === '') throw fail(`${file} is empty`);
  return value.trim();
}

import { readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { isApiKeyName } from '../authz/api-key-principal.js';
import { withFileLock } from '../ca/file-lock.js';
import { fileProblem } from '../config/index.js';
import { apiKeyHash, apiKeyNameRule, newApiKey, withApiKey } from '../filters/api-key-store.js';
import { parseFlags, required, runSubcommand, UsageError, type Command } from './command.js';

const USAGE = `
Usage: meshward apikey create --name NAME --file FILE

  Makes a new API key for the apiKey filter and prints it, once, on stdout: store it where the caller keeps
  secrets, since it cannot be shown again. FILE (created 0600 if missing) gets only the key's name and its
  SHA-256; a sidecar watching FILE accepts the key at once, as the principal apikey:NAME. A NAME already in FILE
  is refused. Revoke a key by deleting its entry from FILE.
`;

export const apikeyCommand: Command = {
  name: 'apikey',
  summary: 'make API keys for the apiKey filter',
  usage: USAGE,
  run: (argv) => runSubcommand(argv, { create }),
};

async function create(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { name: { type: 'string' }, file: { type: 'string' } });
  const name = required(values.name, 'name');
  const file = required(values.file, 'file');
  if (!isApiKeyName(name)) throw new UsageError(`--name ${apiKeyNameRule(name)}`);
  const key = newApiKey();
  // Two `create`s at once must not lose one another's entry.
  await withFileLock(file, async () => {
    const existing = await readExisting(file);
    const text = withApiKey(existing ?? '', file, name, apiKeyHash(key));
    await writeFileAtomic(file, text, existing === undefined ? { mode: 0o600 } : {});
  });
  process.stdout.write(`${key}\n`);
  process.stderr.write(`API key "${name}" added to ${file} (its SHA-256 only). The key above is shown once.\n`);
  return 0;
}

async function readExisting(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: ${fileProblem(err)}`);
  }
}

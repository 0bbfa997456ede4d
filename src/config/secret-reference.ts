// `env:NAME` or `file:PATH`: how a secret (a password, a token) is named in a flag or a config without being
// written there. The value is returned to the caller only; errors name the reference, never the value.
import { readFile } from 'node:fs/promises';
import { fileProblem } from './load.js';

export const SECRET_REFERENCE = /^(?:env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

/** Reads the secret; throws an Error saying what is missing when the variable is unset or the file unreadable or empty. */
export async function readSecretReference(ref: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (!SECRET_REFERENCE.test(ref)) throw new Error('must be env:NAME or file:PATH (the secret itself never goes in a flag or a config)');
  if (ref.startsWith('env:')) {
    const name = ref.slice('env:'.length);
    const value = env[name]?.trim();
    if (!value) throw new Error(`the environment variable ${name} is not set`);
    return value;
  }
  const file = ref.slice('file:'.length);
  const value = await readFile(file, 'utf8').catch((err: unknown) => {
    throw new Error(`cannot read ${file}: ${fileProblem(err)}`);
  });
  if (value.trim() === '') throw new Error(`${file} is empty`);
  return value.trim();
}

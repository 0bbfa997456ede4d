import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiKeyHash, parseApiKeys } from '../../src/filters/api-key-store.js';
import { runCli, tempDir } from '../helpers/cli.js';

// `meshward apikey create` as a real child process: the key on stdout once, only its hash in the file.

describe('meshward apikey create', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir('meshward-apikey-cli-')));
  afterEach(() => cleanup());

  it('prints a new key once and stores only its name and SHA-256, in a file made 0600', async () => {
    const file = join(dir, 'keys.yaml');
    const r = await runCli(['apikey', 'create', '--name', 'billing', '--file', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mw_[A-Za-z0-9_-]{43}\n$/);
    const key = r.stdout.trim();
    expect(r.stderr).toContain('API key "billing" added to');
    expect(r.stderr).not.toContain(key);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(key);
    expect(text).toContain(apiKeyHash(key));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(parseApiKeys(text, file).nameOf(key)).toBe('billing');
  });

  it('adds to an existing file, keeping its mode and entries, and makes a different key each time', async () => {
    const file = join(dir, 'keys.yaml');
    const first = await runCli(['apikey', 'create', '--name', 'billing', '--file', file]);
    chmodSync(file, 0o640);
    const second = await runCli(['apikey', 'create', '--name', 'reports', '--file', file]);
    expect(second.code).toBe(0);
    expect(second.stdout).not.toBe(first.stdout);
    const keys = parseApiKeys(readFileSync(file, 'utf8'), file);
    expect([keys.nameOf(first.stdout.trim()), keys.nameOf(second.stdout.trim())]).toEqual(['billing', 'reports']);
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });

  it('refuses a name already in the file and leaves the file as it was', async () => {
    const file = join(dir, 'keys.yaml');
    await runCli(['apikey', 'create', '--name', 'billing', '--file', file]);
    const before = readFileSync(file, 'utf8');
    const r = await runCli(['apikey', 'create', '--name', 'billing', '--file', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${file}: an API key named "billing" exists already`);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('refuses to touch a file that is no keys file, naming the problem', async () => {
    const file = join(dir, 'keys.yaml');
    writeFileSync(file, 'keys:\n  - name: x\n');
    const r = await runCli(['apikey', 'create', '--name', 'billing', '--file', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${file}: keys[0].sha256: is required`);
    expect(readFileSync(file, 'utf8')).toBe('keys:\n  - name: x\n');
  });

  it('loses no entry when several run at once', async () => {
    const file = join(dir, 'keys.yaml');
    const names = ['a', 'b', 'c', 'd'];
    const results = await Promise.all(names.map((name) => runCli(['apikey', 'create', '--name', name, '--file', file])));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    const keys = parseApiKeys(readFileSync(file, 'utf8'), file);
    expect(results.map((r) => keys.nameOf(r.stdout.trim()))).toEqual(names);
  });

  it('says what is wrong with the flags (exit 2)', async () => {
    const missing = await runCli(['apikey', 'create', '--name', 'x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing required flag --file');
    const badName = await runCli(['apikey', 'create', '--name', 'has space', '--file', join(dir, 'k.yaml')]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('--name "has space" must be 1-64 letters');
    const noSub = await runCli(['apikey']);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('a subcommand is required (one of: create)');
  });
});

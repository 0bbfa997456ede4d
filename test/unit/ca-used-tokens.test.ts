// The shared record of used join tokens, on real files, with several instances standing in for the processes
// that share a CA directory (the lock is proper-lockfile's, which works between instances of one process too).
import { appendFileSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../src/ca/file-lock.js';
import { UsedTokens, type Locked } from '../../src/ca/used-tokens.js';
import { tempDir } from '../helpers/cli.js';

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe('UsedTokens', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  const setUp = () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = join(dir, 'used-tokens.jsonl');
    const locked: Locked = (fn) => withFileLock(join(dir, 'ca.json'), fn);
    return { file, open: () => UsedTokens.open(file, locked) };
  };
  const jtis = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { jti: string }).jti);

  it('refuses a token another process recorded since this one last read, and reads on from there', async () => {
    const { open } = setUp();
    const [a, b] = await Promise.all([open(), open()]);
    expect(await a.use({ jti: 'x', exp: inAnHour() })).toBe(true);
    expect(b.has('x')).toBe(false);
    expect(await b.use({ jti: 'x', exp: inAnHour() })).toBe(false);
    expect(b.has('x')).toBe(true);
    expect(await b.use({ jti: 'y', exp: inAnHour() })).toBe(true);
    expect(await a.use({ jti: 'y', exp: inAnHour() })).toBe(false);
    expect(await a.use({ jti: 'z', exp: inAnHour() })).toBe(true);
    expect(await b.use({ jti: 'z', exp: inAnHour() })).toBe(false);
  });

  it('lets one of many concurrent uses of a token through, and records each token once', async () => {
    const { file, open } = setUp();
    const instances = await Promise.all([open(), open(), open()]);
    const uses = instances.flatMap((t) => ['p', 'q', 'r'].map((jti) => t.use({ jti, exp: inAnHour() })));
    expect((await Promise.all(uses)).filter(Boolean)).toHaveLength(3);
    expect(jtis(file).sort()).toEqual(['p', 'q', 'r']);
  });

  it('compacts long-expired records on open without losing a record another process appends afterwards', async () => {
    const { file, open } = setUp();
    const serving = await open();
    expect(await serving.use({ jti: 'long-expired', exp: Math.floor(Date.now() / 1000) - 3600 })).toBe(true);
    expect(await serving.use({ jti: 'live', exp: inAnHour() })).toBe(true);
    await open(); // another process starting: it rewrites the file without the expired record
    expect(jtis(file)).toEqual(['live']);
    expect(await serving.use({ jti: 'after', exp: inAnHour() })).toBe(true);
    const restarted = await open();
    expect(['live', 'after'].map((j) => restarted.has(j))).toEqual([true, true]);
    expect(restarted.has('long-expired')).toBe(false);
  });

  it('cuts off a record a crash left half-written, so that the next one starts on its own line', async () => {
    const { file, open } = setUp();
    writeFileSync(file, `${JSON.stringify({ jti: 'whole', exp: inAnHour() })}\n{"jti":"ha`);
    const tokens = await open();
    expect(tokens.has('whole')).toBe(true);
    expect(await tokens.use({ jti: 'next', exp: inAnHour() })).toBe(true);
    expect(jtis(file)).toEqual(['whole', 'next']);
    // A process that crashes mid-write later: the others cut it off too.
    appendFileSync(file, '{"jti":"ha');
    expect(await tokens.use({ jti: 'later', exp: inAnHour() })).toBe(true);
    expect(jtis(file)).toEqual(['whole', 'next', 'later']);
  });

  it('fails closed when the record disappears: the use is refused and the token stays used up', async () => {
    const { file, open } = setUp();
    const tokens = await open();
    expect(await tokens.use({ jti: 'x', exp: inAnHour() })).toBe(true);
    unlinkSync(file);
    await expect(tokens.use({ jti: 'y', exp: inAnHour() })).rejects.toThrow(/used-tokens\.jsonl \(the record of used join tokens\) disappeared; restore it, or restart the CA/);
    expect(tokens.has('y')).toBe(true);
    expect(await tokens.use({ jti: 'y', exp: inAnHour() })).toBe(false);
  });
});

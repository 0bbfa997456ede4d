import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WatchedFile } from '../../src/filters/watched-file.js';
import { tempDir } from '../helpers/cli.js';
import { memoryLogger } from '../helpers/filter-context.js';

// The file behind apiKey, validate and ipList: loaded at start, reloaded on change, the last good content kept.

const parseNumber = (text: string) => {
  const n = Number(text.trim());
  if (!Number.isInteger(n)) throw new Error(`line 1: "${text.trim()}" is not a whole number`);
  return n;
};

describe('WatchedFile', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));

  async function open(content: string) {
    const { dir, cleanup } = tempDir('meshward-watched-');
    const file = join(dir, 'n.txt');
    writeFileSync(file, content);
    const { logger, lines } = memoryLogger();
    const watched = await WatchedFile.open(file, parseNumber, logger, 'number file', 10);
    cleanups.push(() => watched.close(), cleanup);
    return { watched, file, dir, lines };
  }

  it('refuses to start on a missing or invalid file, naming it', async () => {
    const { dir, cleanup } = tempDir('meshward-watched-');
    cleanups.push(cleanup);
    const { logger } = memoryLogger();
    await expect(WatchedFile.open(join(dir, 'none.txt'), parseNumber, logger, 'number file')).rejects.toThrow(`${join(dir, 'none.txt')}: file not found`);
    writeFileSync(join(dir, 'bad.txt'), 'x');
    await expect(WatchedFile.open(join(dir, 'bad.txt'), parseNumber, logger, 'number file')).rejects.toThrow(`${join(dir, 'bad.txt')}: line 1: "x" is not a whole number`);
  });

  it('reloads on a change, keeps the last good content for a bad one or a deleted file, and says why', async () => {
    const { watched, file, lines } = await open('1');
    expect(watched.current).toBe(1);
    writeFileSync(file, '2');
    await once(watched, 'loaded');
    expect(watched.current).toBe(2);
    writeFileSync(file, 'two');
    expect(await once(watched, 'rejected')).toEqual(['line 1: "two" is not a whole number']);
    rmSync(file);
    expect(await once(watched, 'rejected')).toEqual(['file not found']);
    expect(watched.current).toBe(2);
    expect(lines.filter((l) => l.includes('rejected; the last good one stays in force'))).toHaveLength(2);
  });

  it('does not load again content it has loaded (an editor saving the same bytes)', async () => {
    const { watched, file } = await open('1');
    const events: string[] = [];
    watched.on('loaded', () => events.push('loaded'));
    await watched.reload();
    writeFileSync(file, '1');
    await watched.reload();
    expect(events).toEqual([]);
    writeFileSync(file, '3');
    await watched.reload();
    expect(events).toEqual(['loaded']);
  });
});

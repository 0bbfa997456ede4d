import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppendLog, readRecords } from '../../src/telemetry/append-log.js';
import { tempDir } from '../helpers/cli.js';

describe('AppendLog', () => {
  it('resolves each append once it is on disk, batching concurrent appends, in order', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'log.jsonl');
    const log = await AppendLog.open(file);
    await Promise.all(Array.from({ length: 500 }, (_, i) => log.append({ i })));
    expect((await readRecords<{ i: number }>(file)).records.map((r) => r.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await log.close();
    await expect(log.append({ late: true })).rejects.toThrow(/closed/);
    cleanup();
  });

  it('reports a torn last line (a crash mid-write) instead of failing or dropping it silently', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'log.jsonl');
    const log = await AppendLog.open(file);
    await log.append({ a: 1 });
    await log.close();
    appendFileSync(file, '{"b":');
    expect(await readRecords(file)).toEqual({ records: [{ a: 1 }], tornTail: '{"b":' });
    appendFileSync(file, '\n{"c":3}\n');
    await expect(readRecords(file)).rejects.toThrow(/line 2 is not valid JSON/);
    expect(readFileSync(file, 'utf8')).toContain('{"a":1}');
    cleanup();
  });
});

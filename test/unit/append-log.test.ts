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

  it('with a commit delay, lets records wait to share a write, and writes them at once on close', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'log.jsonl');
    // A delay no test run reaches: anything on disk before close() was written early.
    const log = await AppendLog.open(file, { commitDelayMs: 60_000 });
    for (let i = 0; i < 20; i++) {
      log.enqueueLine(JSON.stringify({ i }));
      await new Promise((r) => setImmediate(r));
    }
    expect(readFileSync(file, 'utf8')).toBe('');
    await log.close();
    expect((await readRecords<{ i: number }>(file)).records.map((r) => r.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    cleanup();
  });

  it('resolves an awaited append once its delayed write is on disk', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'log.jsonl');
    const log = await AppendLog.open(file, { commitDelayMs: 20 });
    await log.append({ a: 1 });
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    await log.close();
    cleanup();
  });

  it('waits for the disk on every write (O_DSYNC) unless given a sync interval; then writes at once and syncs later', async () => {
    const { dir, cleanup } = tempDir();
    // The open file's flags, as the kernel holds them (octal in /proc): O_DSYNC is 010000 on Linux.
    const dsync = (log: AppendLog) => {
      const fd = (log as unknown as { handle: { fd: number } }).handle.fd;
      const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
      return (parseInt(flags, 8) & 0o10000) !== 0;
    };
    const durable = await AppendLog.open(join(dir, 'ca.jsonl'));
    const buffered = await AppendLog.open(join(dir, 'sidecar.jsonl'), { commitDelayMs: 1, syncIntervalMs: 60_000 });
    expect(dsync(durable)).toBe(true);
    expect(dsync(buffered)).toBe(false);
    // Written to the kernel (readable at once), long before the sync interval: a crash of the process loses nothing.
    await buffered.append({ a: 1 });
    expect(readFileSync(join(dir, 'sidecar.jsonl'), 'utf8')).toBe('{"a":1}\n');
    buffered.enqueueLine('{"a":2}');
    // close() writes what is queued and syncs at once rather than after the interval.
    await Promise.all([durable.close(), buffered.close()]);
    expect(readFileSync(join(dir, 'sidecar.jsonl'), 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    cleanup();
  });

  it('reports a failed write of enqueued records to onError, with how many were lost', async () => {
    const failures: Array<[string, number]> = [];
    // /dev/full refuses every write with ENOSPC: a disk that filled up.
    const log = await AppendLog.open('/dev/full', { onError: (err, records) => failures.push([(err as NodeJS.ErrnoException).code ?? err.message, records]) });
    log.enqueueLine('{"a":1}');
    log.enqueueLine('{"a":2}');
    await expect(log.append({ a: 3 })).rejects.toThrow(/ENOSPC/);
    expect(failures).toEqual([['ENOSPC', 2]]);
    await log.close();
    log.enqueueLine('{"late":true}');
    expect(failures).toEqual([['ENOSPC', 2], [expect.stringMatching(/closed/), 1]]);
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

// AuditLog reopening a log reads only its end (the last complete record and any torn bytes after it), on real
// files larger than what it reads at a time.
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/telemetry/audit-chain.js';
import { AuditLog } from '../../src/telemetry/audit-log.js';
import { fileInFreshDirEachTest } from '../helpers/cli.js';

describe('AuditLog on an existing file', () => {
  const fresh = fileInFreshDirEachTest('audit.jsonl');

  const chain = () => verifyChain([{ name: fresh.path(), text: readFileSync(fresh.path(), 'utf8') }]);
  const lines = () => readFileSync(fresh.path(), 'utf8').trim().split('\n');

  it('chains on from the last record, when that record alone is longer than a read and the file is much longer', async () => {
    const path = fresh.path();
    const first = await AuditLog.open({ path });
    for (let i = 0; i < 2_000; i++) first.enqueue({ i, note: 'x'.repeat(100) });
    // Longer than readTail's 64 KiB reads, and not a multiple of them: it spans at least two.
    await first.append({ big: 'y'.repeat(150_000) });
    await first.close();
    const head = first.headHash;

    const again = await AuditLog.open({ path });
    expect(again.headHash).toBe(head);
    await again.append({ after: 'reopen' });
    await again.close();
    const report = chain();
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(2_002);
  });

  it('keeps torn bytes longer than a read in the recovery record, and cuts them from the file', async () => {
    const path = fresh.path();
    const log = await AuditLog.open({ path });
    await log.append({ i: 1 });
    await log.close();
    const torn = `{"torn":"${'z'.repeat(100_000)}`;
    appendFileSync(path, torn);

    const reopened = await AuditLog.open({ path });
    await reopened.close();
    const [, recovery] = lines().map((l) => JSON.parse(l) as { type?: string; bytes?: string });
    expect(recovery!.type).toBe('recovered-torn-write');
    expect(Buffer.from(recovery!.bytes!, 'base64').toString()).toBe(torn);
    expect(chain().problem).toBeUndefined();
  });

  it('finds the last record when the newline that ends it is the first byte of a read', async () => {
    const path = fresh.path();
    const log = await AuditLog.open({ path });
    await log.append({ i: 1 });
    await log.close();
    // readTail reads the last 64 KiB first: with 64 KiB - 1 torn bytes, that read starts at the record's newline.
    const torn = `{"torn":"${'z'.repeat(64 * 1024 - 1 - 9)}`;
    expect(Buffer.byteLength(torn)).toBe(64 * 1024 - 1);
    appendFileSync(path, torn);

    const reopened = await AuditLog.open({ path });
    await reopened.close();
    const [first, recovery] = lines().map((l) => JSON.parse(l) as { i?: number; type?: string; bytes?: string });
    expect(first!.i).toBe(1);
    expect(recovery!.type).toBe('recovered-torn-write');
    expect(Buffer.from(recovery!.bytes!, 'base64').toString()).toBe(torn);
    expect(chain().problem).toBeUndefined();
  });

  it('starts a new chain on a file that holds only torn bytes', async () => {
    const path = fresh.path();
    writeFileSync(path, '{"never":"finished');
    const log = await AuditLog.open({ path });
    await log.close();
    const written = lines().map((l) => JSON.parse(l) as { type?: string; prev?: string });
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ type: 'recovered-torn-write' });
    expect(chain().problem).toBeUndefined();
    expect(statSync(path).size).toBeGreaterThan(0);
  });
});

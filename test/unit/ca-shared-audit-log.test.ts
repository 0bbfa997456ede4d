// The CA's audit log shared by several writers, on real files, with two instances standing in for a busy
// `ca serve` and an offline `ca issue` (the lock is proper-lockfile's, which works between instances of one process).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SharedAuditLog } from '../../src/ca/shared-audit-log.js';
import { verifyChain } from '../../src/telemetry/audit-chain.js';
import { fileInFreshDirEachTest } from '../helpers/cli.js';

describe('SharedAuditLog', () => {
  const fresh = fileInFreshDirEachTest('audit.log');
  const records = (file: string) =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { writer: string; n: number });

  it('gives a waiting writer its turn while another keeps the log busy, on one unbroken chain', async () => {
    const file = fresh.path();
    const [busy, offline] = await Promise.all([SharedAuditLog.open(file), SharedAuditLog.open(file)]);
    // 32 appenders, each pausing a few turns of the event loop between appends (as a CA's requests arrive from
    // its signing threads): a batch is always waiting when one is written, so the busy writer keeps renewing its lease.
    let stop = false;
    let busyCount = 0;
    const load = Array.from({ length: 32 }, async () => {
      while (!stop) {
        await busy.append({ writer: 'busy', n: busyCount++ });
        for (let i = Math.floor(Math.random() * 4); i > 0; i--) await new Promise((r) => setImmediate(r));
      }
    });
    while (busyCount < 200) await new Promise((r) => setImmediate(r));

    // Without a turn given at the end of each lease, these waited for a gap between two leases (3.3 s in one run), or
    // the lock's 15 s limit. With it, each takes about one lease (100 ms); the bound leaves room for a slow machine.
    const waits: number[] = [];
    for (let n = 0; n < 3; n++) {
      const asked = Date.now();
      await offline.append({ writer: 'offline', n });
      waits.push(Date.now() - asked);
    }
    const busyWhenOfflineDone = busyCount;
    while (busyCount < busyWhenOfflineDone + 200) await new Promise((r) => setImmediate(r));
    stop = true;
    await Promise.all(load);
    await Promise.all([busy.close(), offline.close()]);

    for (const wait of waits) expect(wait).toBeLessThan(1_500);
    const written = records(file);
    expect(written.filter((r) => r.writer === 'offline').map((r) => r.n)).toEqual([0, 1, 2]);
    expect(written.filter((r) => r.writer === 'busy')).toHaveLength(busyCount);
    // The busy writer kept writing around the offline records: they are not at the end.
    expect(written.findLastIndex((r) => r.writer === 'offline')).toBeLessThan(written.length - 100);
    const report = verifyChain([{ name: file, text: readFileSync(file, 'utf8') }]);
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(busyCount + 3);
  });

  it('holds no lock once its appends are done', async () => {
    const file = fresh.path();
    const log = await SharedAuditLog.open(file);
    await Promise.all(Array.from({ length: 50 }, (_, n) => log.append({ writer: 'a', n })));
    expect(existsSync(`${file}.lock`)).toBe(false);
    await log.close();
    expect(records(file)).toHaveLength(50);
  });
});

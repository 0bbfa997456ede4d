import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog, type AuditRotation } from '../../src/telemetry/audit-log.js';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';

const verify = (...files: string[]) => runCli(['audit', 'verify', ...files]);

describe('tamper-evident audit log', () => {
  it('writes a chain that `meshward audit verify` accepts, across rotated files, and rejects any edit', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'audit.jsonl');
    const log = await AuditLog.open({ path, maxBytes: 4096 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ time: new Date().toISOString(), principal: `spiffe://example.org/w${i}`, decision: 'allow' })));
    await log.close();
    const rotated = readdirSync(dir).filter((f) => f.startsWith('audit.jsonl.')).sort().map((f) => join(dir, f));
    expect(rotated.length).toBeGreaterThan(3);
    const all = [...rotated, path];
    const ok = await verify(...all);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('OK: 200 record(s)');
    expect(ok.stdout).toContain(`head ${log.headHash}`);

    // Reopening continues the same chain.
    const again = await AuditLog.open({ path, maxBytes: 1 << 20 });
    await again.append({ decision: 'deny' });
    await again.close();
    expect((await verify(...all)).code).toBe(0);

    const victim = rotated[1]!;
    const lines = readFileSync(victim, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"allow"', '"deny"');
    writeFileSync(victim, lines.join('\n'));
    const bad = await verify(...all);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${victim}:3: its hash does not match`);
    cleanup();
  });

  it('keeps at most keepFiles rotated files; what is left still verifies from the anchor each rotation reported', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'audit.jsonl');
    // The CA's lock directory sits beside its log: pruning must not count or touch it.
    mkdirSync(`${path}.lock`);
    const rotations: AuditRotation[] = [];
    const log = await AuditLog.open({ path, maxBytes: 2048, keepFiles: 2, onRotate: (r) => rotations.push(r) });
    for (let i = 0; i < 60; i++) await log.append({ i, principal: `spiffe://example.org/w${i}`, decision: 'allow' });
    await log.close();

    expect(rotations.length).toBeGreaterThan(4);
    const rotated = readdirSync(dir).filter((f) => /^audit\.jsonl\.\d/.test(f)).sort().map((f) => join(dir, f));
    expect(rotated).toEqual(rotations.slice(-2).map((r) => r.rotatedTo));
    expect(existsSync(`${path}.lock`)).toBe(true);
    // Every file that went is named once, by the rotation that pushed it out; none of the kept ones is.
    const pruned = rotations.flatMap((r) => r.pruned);
    expect(pruned).toEqual(rotations.slice(0, -2).map((r) => r.rotatedTo));
    for (const file of pruned) expect(existsSync(file)).toBe(false);
    // Each rotation reports the last hash of the file it closed: the "prev" of the next file's first record.
    const firstOfLastKept = JSON.parse(readFileSync(rotated[0]!, 'utf8').split('\n')[0]!) as { prev: string };
    expect(firstOfLastKept.prev).toBe(rotations[rotations.length - 3]!.head);
    const ok = await verify(...rotated, path);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`head ${log.headHash}`);
    cleanup();
  });

  it('survives a kill -9 mid-write: the torn line is reported, then kept in a recovery record on reopen', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'audit.jsonl');
    // A writer in its own process, killed while it appends as fast as it can.
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `import { AuditLog } from '${join(REPO_ROOT, 'dist/telemetry/audit-log.js')}';
       const log = await AuditLog.open({ path: ${JSON.stringify(path)} });
       let i = 0; process.stdout.write('ready\\n');
       for (;;) await Promise.all(Array.from({ length: 50 }, () => log.append({ i: i++, pad: 'x'.repeat(200) })));`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    // Let it write a good number of records; any moment after that is a fine moment to die.
    while (!existsSync(path) || statSync(path).size < 256 * 1024) await new Promise((r) => setImmediate(r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    appendFileSync(path, '{"i":"torn'); // make sure the tail is torn, whatever the kill left
    const torn = await verify(path);
    expect(torn.code).toBe(1);
    expect(torn.stderr).toMatch(/:\d+: the last line is incomplete/);

    const log = await AuditLog.open({ path });
    await log.close();
    const ok = await verify(path);
    expect(ok.code, ok.stderr).toBe(0);
    const last = JSON.parse(readFileSync(path, 'utf8').trim().split('\n').pop()!);
    expect(last.type).toBe('recovered-torn-write');
    expect(Buffer.from(last.bytes, 'base64').toString()).toMatch(/\{"i":"torn$/);
    cleanup();
  });

  it('names a missing file and refuses a call without files', async () => {
    expect((await verify('/nonexistent/audit.jsonl')).stderr).toContain('file not found');
    expect((await runCli(['audit', 'verify'])).code).toBe(2);
  });
});

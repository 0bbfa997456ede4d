import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, runPair } from '../helpers/sidecar.js';

// The sidecar's audit log on a real pair: rotation at `audit.maxFileBytes`, at most `audit.keepFiles` rotated files
// left, each rotation and the close logged with the head hash, and what is left verified by `meshward audit verify`.

describe('sidecar: audit log rotation and retention', () => {
  const { dir, cleanup } = tempDir();
  const app = http.createServer((_req, res) => res.end('ok'));
  afterAll(() => {
    app.close();
    cleanup();
  });

  it('keeps keepFiles rotated files, logs each rotation and the head at close, and what is left verifies', async () => {
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const auditPath = join(dir, 'audit.jsonl');
    const mesh = await makeMesh(dir);
    const { orders, web } = await runPair(mesh, {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      // A record is about 400 bytes: a few per file, so 30 requests rotate several times.
      ordersExtra: { audit: { path: auditPath, maxFileBytes: 1500, keepFiles: 2 } },
    });
    for (let i = 0; i < 30; i++) expect((await httpRequest(web.outbound!, `/api/orders/${i}`, { headers: { host: 'orders' } })).status).toBe(200);
    expect(await web.stop()).toBe(0);
    expect(await orders.stop()).toBe(0);

    const lines = orders
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; rotatedTo?: string; pruned?: string[]; head?: string });
    const rotations = lines.filter((l) => l.msg === 'audit log rotated');
    expect(rotations.length).toBeGreaterThanOrEqual(5);
    const rotated = readdirSync(dir).filter((f) => f.startsWith('audit.jsonl.')).sort().map((f) => join(dir, f));
    expect(rotated).toEqual(rotations.slice(-2).map((r) => r.rotatedTo));
    const pruned = rotations.flatMap((r) => r.pruned ?? []);
    expect(pruned).toEqual(rotations.slice(0, -2).map((r) => r.rotatedTo));
    for (const file of pruned) expect(existsSync(file)).toBe(false);

    const closed = lines.find((l) => l.msg === 'audit log closed');
    expect(closed?.head).toMatch(/^[0-9a-f]{64}$/);
    const verified = await runCli(['audit', 'verify', ...rotated, auditPath]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('OK: ');
    expect(verified.stdout).toContain(`head ${closed!.head}`);
  });
});

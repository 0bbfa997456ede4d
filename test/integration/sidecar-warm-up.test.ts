// Before /readyz says ready, a sidecar sends requests through throwaway listeners of its own (proxy/warm-up.ts), so
// that real traffic meets optimised code, through a throwaway policy, audit log and metrics. Those requests must
// leave no trace: the app, the audit log and the metrics see only real requests, and the temp directory is empty.
import http from 'node:http';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, startHttpApp, readJsonLines, runPair, type Mesh } from '../helpers/sidecar.js';

describe('sidecar warm-up', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  let appUrl: string;
  const seen: string[] = [];

  beforeAll(async () => {
    ({ server: app, url: appUrl } = await startHttpApp((req, res) => {
      seen.push(req.url ?? '');
      res.end('ok');
    }));
    mesh = await makeMesh(dir);
  });

  afterAll(() => {
    app?.close();
    cleanup();
  });

  it('runs through both listeners before ready, and neither the app, the audit log nor the metrics hear of it', async () => {
    const audit = join(dir, 'orders-audit.jsonl');
    const warmUp = { warmUp: { requests: 300 } };
    // The warm-up's throwaway audit log lives in a temp directory of its own, removed once it is done.
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const pair = await runPair(mesh, { app: appUrl, ordersExtra: { ...warmUp, audit: { path: audit } }, webExtra: warmUp, env: { TMPDIR: tmp } });
    try {
      for (const sidecar of [pair.orders, pair.web]) {
        const line = sidecar.output().split('\n').find((l) => l.includes('"msg":"warmed up"'));
        expect(line, sidecar.output()).toBeDefined();
        expect(JSON.parse(line!)).toMatchObject({ requests: 300, failed: 0 });
      }
      expect(seen).toEqual([]);
      expect(readdirSync(tmp)).toEqual([]);
      expect((await httpRequest(pair.web.outbound!, '/api/orders/1', { headers: { host: 'orders' } })).status).toBe(200);
      expect(seen).toEqual(['/api/orders/1']);
      const metrics = (await httpRequest(pair.orders.admin, '/metrics')).body;
      const served = metrics.split('\n').filter((l) => l.startsWith('meshward_requests_total{'));
      expect(served.map((l) => Number(l.split(' ').pop())).reduce((a, b) => a + b, 0)).toBe(1);
    } finally {
      await Promise.all([pair.orders.stop(), pair.web.stop()]);
    }
    expect(readJsonLines(audit).map((r) => r.path)).toEqual(['/api/orders/1']);
  });
});

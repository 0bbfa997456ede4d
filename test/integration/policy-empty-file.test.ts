// A policy file emptied, cut short or left with comments only (a writer mid-write, a bad `>` redirect, a ConfigMap
// gone wrong) is not a policy: a running sidecar keeps the last good one and counts the refusal, and neither the
// sidecar nor `meshward authz` starts on one.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TD } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, runPair, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const EMPTY_POLICY = 'the policy is empty (no defaultAction, no rules)';
/** The allowing policy cut off inside its rule's `from`, where a writer could have stopped. */
const TRUNCATED = ALLOW_WEB_GET_ORDERS.slice(0, ALLOW_WEB_GET_ORDERS.indexOf('principals') + 'principals: ["spiffe://exa'.length);

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('a running sidecar whose policy file is emptied or cut short', () => {
  const { dir, cleanup } = tempDir('meshward-policy-empty-');
  const app = http.createServer((_req, res) => res.end('ok'));
  let orders: RunningSidecar;
  let web: RunningSidecar;

  beforeAll(async () => {
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    ({ orders, web } = await runPair(await makeMesh(dir), { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` }));
  });
  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app.close();
    cleanup();
  });

  it('keeps the last good policy in force, logs each refusal with the file and counts it', async () => {
    const policyFile = join(dir, 'policy.yaml');
    const get = (path: string) => httpRequest(web.outbound!, path, { headers: { host: 'orders' } });
    const failures = async () => sample((await httpRequest(orders.admin, '/metrics')).body, 'meshward_policy_reload_failures_total');
    expect((await get('/api/orders/1')).status).toBe(200);

    const writes = ['', '# the policy is being rewritten\n\n# nothing here yet\n', TRUNCATED];
    for (const [i, content] of writes.entries()) {
      writeFileSync(policyFile, content);
      await vi.waitFor(async () => expect(await failures()).toBe(i + 1), { timeout: 10_000, interval: 25 });
      expect((await get('/api/orders/1')).status).toBe(200);
      expect((await get('/api/admin')).status).toBe(403);
    }
    const rejections = orders
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"policy rejected; the last good policy stays in force"'))
      .map((l) => JSON.parse(l) as { file: string; error: string });
    expect(rejections).toHaveLength(3);
    for (const r of rejections) expect(r.file).toBe(policyFile);
    for (const r of rejections.slice(0, 2)) expect(r.error).toContain(`policy.yaml: ${EMPTY_POLICY}`);
    expect(rejections[2]!.error).toContain('policy.yaml: invalid YAML');
    expect(sample((await httpRequest(orders.admin, '/metrics')).body, 'meshward_policy_reloads_total')).toBe(0);
  });
});

describe('starting on an empty policy file', () => {
  let mesh: Mesh;
  const { dir, cleanup } = tempDir('meshward-policy-empty-start-');
  const policyFile = join(dir, 'policy.yaml');
  beforeAll(async () => {
    mesh = await makeMesh(dir);
    writeFileSync(policyFile, '# to be written\n');
  });
  afterAll(cleanup);

  it('meshward authz refuses, naming the file (exit 1)', async () => {
    const r = await runCli(['authz', '--policy', policyFile, '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`policy.yaml: ${EMPTY_POLICY}`);
  });

  it('meshward sidecar refuses, naming the file (exit 1)', async () => {
    const svid = await mesh.issue('orders', ORDERS_ID);
    const config = join(dir, 'orders.yaml');
    writeFileSync(config, `trustDomain: ${TD}\nidentity: { files: { cert: ${svid.cert}, key: ${svid.key}, bundle: ${mesh.bundle} } }\ninbound: { listen: 127.0.0.1:0, app: http://127.0.0.1:1, policy: ./policy.yaml }\n`);
    const r = await runCli(['sidecar', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`policy.yaml: ${EMPTY_POLICY}`);
  });

  it('meshward policy check refuses it too (exit 1)', async () => {
    const r = await runCli(['policy', 'check', policyFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`policy.yaml: ${EMPTY_POLICY}`);
  });
});

import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, runPair, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

// Prometheus metrics on each sidecar's admin listener, after one allowed and one denied request through the pair
// web (outbound) → orders (inbound) → an HTTP/1.1 app.

/** A Prometheus text exposition (0.0.4) line: a comment, or `name{label="value",...} value`. */
const EXPOSITION_LINE = /^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))$/;

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const POLICY = `${ALLOW_WEB_GET_ORDERS}
rateLimits:
  - name: one-at-a-time
    match: { paths: ["/api/orders/limited"] }
    requestsPerSecond: 1
    burst: 1
`;

async function eventually(read: () => Promise<number | undefined>, expected: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last: number | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (last === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(last).toBe(expected);
}

describe('sidecar: /metrics on the admin listener', () => {
  const { dir, cleanup } = tempDir();
  let app: http.Server;
  let mesh: Mesh;
  let orders: RunningSidecar;
  let web: RunningSidecar;

  beforeAll(async () => {
    app = http.createServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, policy: POLICY }));
    expect((await viaWeb('/api/orders/7')).status).toBe(200);
    expect((await viaWeb('/api/admin')).status).toBe(403);
  });

  const viaWeb = (path: string) => httpRequest(web.outbound!, path, { headers: { host: 'orders' } });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.close();
    cleanup();
  });

  it("serves the inbound sidecar's requests, decisions, latencies and identity as Prometheus text", async () => {
    const res = await httpRequest(orders.admin, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    for (const line of text.split('\n').filter((l) => l !== '')) expect(line).toMatch(EXPOSITION_LINE);

    expect(text).toMatch(/^# TYPE meshward_requests_total counter$/m);
    expect(sample(text, 'meshward_requests_total{direction="inbound",decision="allow",status="200"}')).toBe(1);
    expect(sample(text, 'meshward_requests_total{direction="inbound",decision="deny",status="403"}')).toBe(1);
    expect(sample(text, 'meshward_authz_decisions_total{outcome="allow",rule="web-reads-orders"}')).toBe(1);
    expect(sample(text, 'meshward_authz_decisions_total{outcome="deny",rule="default"}')).toBe(1);

    expect(text).toMatch(/^# TYPE meshward_request_duration_seconds histogram$/m);
    expect(sample(text, 'meshward_request_duration_seconds_count{direction="inbound"}')).toBe(2);
    expect(sample(text, 'meshward_request_duration_seconds_bucket{direction="inbound",le="+Inf"}')).toBe(2);
    expect(sample(text, 'meshward_request_duration_seconds_sum{direction="inbound"}')).toBeGreaterThan(0);
    expect(sample(text, 'meshward_authz_duration_seconds_count')).toBe(2);

    expect(text).toMatch(/^# TYPE meshward_svid_expiry_seconds gauge$/m);
    expect(sample(text, 'meshward_svid_expiry_seconds')).toBeGreaterThan(3000);
    expect(sample(text, 'meshward_svid_rotations_total')).toBe(0);
    expect(sample(text, 'meshward_svid_rotation_failures_total')).toBe(0);
    expect(sample(text, 'meshward_policy_reloads_total')).toBe(0);
    expect(sample(text, 'meshward_policy_reload_failures_total')).toBe(0);
    // Nothing from a request's path, host or principal becomes a label.
    expect(text).not.toMatch(/\/api\/|spiffe:\/\//);
  });

  it("serves the outbound sidecar's requests, without authorization series", async () => {
    const res = await httpRequest(web.admin, '/metrics');
    expect(res.status).toBe(200);
    const text = res.body;
    expect(sample(text, 'meshward_requests_total{direction="outbound",decision="none",status="200"}')).toBe(1);
    expect(sample(text, 'meshward_requests_total{direction="outbound",decision="none",status="403"}')).toBe(1);
    expect(sample(text, 'meshward_request_duration_seconds_count{direction="outbound"}')).toBe(2);
    expect(text).not.toMatch(/^meshward_authz_decisions_total/m);
    expect(text).not.toMatch(/^meshward_policy_reloads_total/m);
  });

  it('counts rate-limit rejections by limit name', async () => {
    expect((await viaWeb('/api/orders/limited')).status).toBe(200);
    expect((await viaWeb('/api/orders/limited')).status).toBe(429);
    const text = (await httpRequest(orders.admin, '/metrics')).body;
    expect(sample(text, 'meshward_rate_limited_total{limit="one-at-a-time"}')).toBe(1);
    expect(sample(text, 'meshward_authz_decisions_total{outcome="rate_limited",rule="one-at-a-time"}')).toBe(1);
    expect(sample(text, 'meshward_requests_total{direction="inbound",decision="rate_limited",status="429"}')).toBe(1);
    expect(sample(text, 'meshward_requests_total{direction="inbound",decision="allow",status="200"}')).toBe(2);
  });

  it('lists /metrics among the admin paths', async () => {
    const res = await httpRequest(orders.admin, '/nope');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ paths: expect.arrayContaining(['/metrics']) });
  });

  it('counts SVID rotations and refused identity files, policy reloads and refused policies', async () => {
    const ordersMetric = async (series: string) => sample((await httpRequest(orders.admin, '/metrics')).body, series);
    await mesh.issue('orders', ORDERS_ID);
    await eventually(() => ordersMetric('meshward_svid_rotations_total'), 1);

    const policyFile = join(mesh.dir, 'policy.yaml');
    writeFileSync(policyFile, `${ALLOW_WEB_GET_ORDERS}# edited\n`);
    await eventually(() => ordersMetric('meshward_policy_reloads_total'), 1);
    writeFileSync(policyFile, 'rules: [');
    await eventually(() => ordersMetric('meshward_policy_reload_failures_total'), 1);

    const failuresBefore = (await ordersMetric('meshward_svid_rotation_failures_total'))!;
    writeFileSync(join(mesh.dir, 'orders.pem'), 'not a certificate\n');
    await eventually(() => ordersMetric('meshward_svid_rotation_failures_total'), failuresBefore + 1);
    expect(await ordersMetric('meshward_svid_rotations_total')).toBe(1);
  });

  it('warns of a denial spike: a caller denied far more often than its own usual rate', async () => {
    const before = sample((await httpRequest(orders.admin, '/metrics')).body, 'meshward_denial_spikes_total');
    expect(before).toBe(0);
    for (let i = 0; i < 25; i++) expect((await viaWeb(`/api/admin/${i}`)).status).toBe(403);
    expect(sample((await httpRequest(orders.admin, '/metrics')).body, 'meshward_denial_spikes_total')).toBe(1);
    const warning = orders.output().split('\n').find((line) => line.includes('denial spike'));
    expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', caller: WEB_ID, denials: 20, windowSeconds: 10 });
  });
});

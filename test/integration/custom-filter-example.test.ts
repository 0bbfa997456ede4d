// examples/custom-filter.mjs, as docs/filters.md tells a user to run it: listed in a real sidecar's config by a path
// relative to the config file, checked by --check-config, and run on requests that crossed a real mesh hop (web's
// outbound listener, mTLS, orders's inbound listener) over HTTP/1.1 and HTTP/2.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { connectH2, h2Request } from '../helpers/h2-client.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, runPair, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const EXAMPLE = join(REPO_ROOT, 'examples/custom-filter.mjs');

let dir: { dir: string; cleanup: () => void };
let mesh: Mesh;
let app: http.Server;
let appAddress: string;
const seen: http.IncomingHttpHeaders[] = [];
let pair: { orders: RunningSidecar; web: RunningSidecar } | undefined;

beforeAll(async () => {
  dir = tempDir();
  mesh = await makeMesh(dir.dir);
  app = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end('orders');
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await pair?.web.stop();
  await pair?.orders.stop();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  dir?.cleanup();
});

/** The example as a config lists it: a path relative to the config file's directory (the mesh directory here). */
const entry = (settings: object) => ({ module: relative(dir.dir, EXAMPLE), settings });

describe('examples/custom-filter.mjs', () => {
  it('is checked by --check-config, its settings through its own schema', async () => {
    const config = (settings: object) => ({
      trustDomain: TD,
      identity: { files: { cert: 'orders.pem', key: 'orders.key', bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `http://${appAddress}`, policy: 'policy.yaml', filters: [entry(settings)] },
    });
    await mesh.issue('orders', ORDERS_ID);
    writeFileSync(join(dir.dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    const good = join(dir.dir, 'tenant-good.yaml');
    writeFileSync(good, JSON.stringify(config({ tenants: ['blue'] })));
    const checked = await runCli(['sidecar', '--config', good, '--check-config']);
    expect(checked.stdout).toBe(`${good}: OK; inbound: headerChecks → limits → peerAuthentication → tenant → authz\n`);
    const bad = join(dir.dir, 'tenant-bad.yaml');
    writeFileSync(bad, JSON.stringify(config({ tenants: [], header: 'X Tenant' })));
    const refused = await runCli(['sidecar', '--config', bad, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${bad}: inbound.filters[0].settings.header: must be a lower-case header name`);
    expect(refused.stderr).toContain(`${bad}: inbound.filters[0].settings.tenants: name at least one tenant`);
  });

  it('refuses a request without a known tenant, passes the others, and stamps every answer', async () => {
    pair = await runPair(mesh, { app: `http://${appAddress}`, inboundExtra: { filters: [entry({ tenants: ['blue', 'green'] })] } });
    const { web } = pair;
    const before = seen.length;
    const missing = await httpRequest(web.outbound!, '/api/orders', { headers: { host: 'orders' } });
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'bad_request', reason: 'the x-tenant header must name a tenant' });
    expect(missing.headers['x-served-tenant']).toBe('none');
    const unknown = await httpRequest(web.outbound!, '/api/orders', { headers: { host: 'orders', 'x-tenant': 'red' } });
    expect(unknown.status).toBe(400);
    expect(seen.length).toBe(before);

    const blue = await httpRequest(web.outbound!, '/api/orders', { headers: { host: 'orders', 'x-tenant': 'blue' } });
    expect(blue).toMatchObject({ status: 200, body: 'orders', headers: { 'x-served-tenant': 'blue' } });
    expect(seen.at(-1)).toMatchObject({ 'x-tenant-checked': 'blue' });
    const session = connectH2(web.outbound!);
    const green = await h2Request(session, { ':path': '/api/orders', ':authority': 'orders', 'x-tenant': 'green' });
    session.close();
    expect(green).toMatchObject({ status: 200, body: 'orders', headers: { 'x-served-tenant': 'green' } });
    expect(seen.at(-1)).toMatchObject({ 'x-tenant-checked': 'green' });
    // A path the policy denies: the example's response side runs on the authz filter's reply too.
    const denied = await httpRequest(web.outbound!, '/admin', { headers: { host: 'orders', 'x-tenant': 'blue' } });
    expect(denied).toMatchObject({ status: 403, headers: { 'x-served-tenant': 'blue' } });
  });
});

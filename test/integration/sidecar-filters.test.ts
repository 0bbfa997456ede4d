// The filter chain of a real sidecar (`meshward sidecar`, child processes): what every inbound chain starts with,
// whatever its config says. Clients hold a real SVID of the mesh and send what an attacker would.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { connectH2, h2Request, identityOf, type MtlsIdentity } from '../helpers/h2-client.js';
import { makeMesh, ORDERS_ID, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const ADMIN_ID = `spiffe://${TD}/ns/default/sa/admin`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let dir: { dir: string; cleanup: () => void };
let mesh: Mesh;
let app: http.Server;
let appAddress: string;
let web: MtlsIdentity;
const sidecars: RunningSidecar[] = [];
/** The headers of every request the app answered, in order. */
const seenHeaders: http.IncomingHttpHeaders[] = [];

beforeAll(async () => {
  dir = tempDir();
  mesh = await makeMesh(dir.dir);
  await mesh.issue('orders', ORDERS_ID);
  await mesh.issue('web', WEB_ID);
  web = identityOf(dir.dir, 'web', mesh.bundle);
  app = http.createServer((req, res) => {
    seenHeaders.push(req.headers);
    res.end(`app saw ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  for (const sidecar of sidecars) await sidecar.stop();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  dir?.cleanup();
});

/** orders's sidecar: inbound to the app with this policy and these inbound settings. */
async function orders(name: string, policy: string, inbound: object = {}): Promise<RunningSidecar> {
  const policyFile = join(dir.dir, `${name}.policy.yaml`);
  writeFileSync(policyFile, policy);
  const sidecar = await runSidecar(dir.dir, name, {
    trustDomain: TD,
    identity: { files: { cert: join(dir.dir, 'orders.pem'), key: join(dir.dir, 'orders.key'), bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: `http://${appAddress}`, policy: policyFile, ...inbound },
    admin: { listen: '127.0.0.1:0' },
  });
  sidecars.push(sidecar);
  return sidecar;
}

/** A request to an inbound listener with web's SVID, over HTTP/1.1 or HTTP/2. */
async function call(address: string, version: 'HTTP/1.1' | 'HTTP/2', path: string, headers: Record<string, string>): Promise<Answer> {
  if (version === 'HTTP/2') {
    const session = connectH2(address, web);
    const answer = await h2Request(session, { ':path': path, ':authority': 'orders', ...headers });
    session.close();
    return answer;
  }
  const [host, port] = address.split(':');
  return answerOf(https.request({ host, port: Number(port), path, headers: { host: 'orders', ...headers }, ...web, servername: 'localhost', agent: false }));
}

/** A request from the app behind web to web's outbound listener: plain HTTP/1.1, or HTTP/2 with prior knowledge. */
async function outboundCall(address: string, version: 'HTTP/1.1' | 'HTTP/2', host: string, headers: Record<string, string>): Promise<Answer> {
  if (version === 'HTTP/2') {
    const session = connectH2(address);
    const answer = await h2Request(session, { ':path': '/api/x', ':authority': host, ...headers });
    session.close();
    return answer;
  }
  const [hostname, port] = address.split(':');
  return answerOf(http.request({ host: hostname, port: Number(port), path: '/api/x', headers: { host, ...headers }, agent: false }));
}

function answerOf(req: http.ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.on('response', (res: http.IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('identity headers a client sends', () => {
  // A policy that trusts the identity header meshward sets, as a policy author might: the header must then be
  // meshward's, never one the caller wrote, in every spelling a server would take for it.
  const trusting = (header: string) => `
defaultAction: deny
rules:
  - name: admin-by-header
    action: allow
    to: { paths: ["/admin/**"] }
    when: [{ key: "request.headers[${header}]", values: ["${ADMIN_ID}"] }]
`;

  it.each([
    ['x-meshward-principal', 'drop'],
    ['x-forwarded-client-cert', 'drop'],
    ['x_meshward_principal', 'allow'],
    ['x_forwarded_client_cert', 'allow'],
  ] as const)('are not seen by any filter: a forged %s decides nothing (headersWithUnderscores: %s)', async (header, underscores) => {
    const sidecar = await orders(`trusting-${header}`, trusting(header), { headersWithUnderscores: underscores });
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      const answer = await call(sidecar.inbound!, version, '/admin/wipe', { [header]: ADMIN_ID });
      expect(answer.status, `${version} ${header}`).toBe(403);
      expect(answer.body).not.toContain('app saw');
    }
  });
});

describe('dot segments with path parameters', () => {
  // Tomcat, Jetty and Spring drop a segment's ;parameters and then resolve it: /public/..;/admin is /admin to them,
  // while an allow list saw a path under /public. Refused (400) before the policy, on both HTTP versions; the
  // engine's own table (test/unit/policy-path-spellings.test.ts) covers the spellings.
  const PUBLIC_ONLY = 'defaultAction: deny\nrules:\n  - name: public\n    action: allow\n    to: { paths: ["/public/**"] }\n';

  it('are refused, and never reach the app, however the dots are spelt', async () => {
    const sidecar = await orders('dot-parameters', PUBLIC_ONLY);
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      expect((await call(sidecar.inbound!, version, '/public/page;v=2', {})).status, version).toBe(200);
      for (const path of ['/public/..;/admin', '/public/..;jsessionid=1/admin', '/public/%2e%2e;/admin', '/public/.;/../admin', '/public/a/..;x/..;y/admin']) {
        const answer = await call(sidecar.inbound!, version, path, {});
        expect({ version, path, status: answer.status }).toEqual({ version, path, status: 400 });
        expect(answer.body).not.toContain('app saw');
      }
    }
  });
});

const TAG_MODULE = join(REPO_ROOT, 'test/fixtures/filters/tag-filter.mjs');
const NOT_A_FILTER = join(REPO_ROOT, 'test/fixtures/filters/not-a-filter.mjs');

const ALLOW_WEB_READS = `
defaultAction: deny
rules:
  - name: web-reads
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { methods: ["GET"], paths: ["/api/**"] }
`;

/** A config file in the test directory (YAML is JSON): its path. */
function configFile(name: string, config: object): string {
  const file = join(dir.dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function ordersConfig(inbound: object, policy = ALLOW_WEB_READS): object {
  const policyFile = join(dir.dir, 'reads.policy.yaml');
  writeFileSync(policyFile, policy);
  return {
    trustDomain: TD,
    identity: { files: { cert: join(dir.dir, 'orders.pem'), key: join(dir.dir, 'orders.key'), bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: `http://${appAddress}`, policy: policyFile, ...inbound },
    admin: { listen: '127.0.0.1:0' },
  };
}

function webConfig(outbound: object): object {
  return {
    trustDomain: TD,
    identity: { files: { cert: join(dir.dir, 'web.pem'), key: join(dir.dir, 'web.key'), bundle: mesh.bundle } },
    outbound: { listen: '127.0.0.1:0', ...outbound },
    admin: { listen: '127.0.0.1:0' },
  };
}

describe('a listener\'s filters: list', () => {
  it('is checked by --check-config, which prints each listener\'s chain in order', async () => {
    const file = configFile('good', {
      ...ordersConfig({ filters: [{ module: TAG_MODULE, settings: { value: 'orders' } }, { authz: {} }] }),
      outbound: { listen: '127.0.0.1:0', filters: [{ module: TAG_MODULE }], routes: [{ host: 'orders', address: '127.0.0.1:1', spiffeId: ORDERS_ID, filters: { tag: false } }] },
    });
    const checked = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    expect(checked.stdout).toBe(`${file}: OK; inbound: headerChecks → limits → peerAuthentication → tag → authz; outbound: headerChecks → limits → tag\n`);
  });

  it('refuses what cannot be built, every problem named by its path', async () => {
    const inbound = configFile('bad-inbound', ordersConfig({ filters: [{ limits: {} }, { nosuch: {} }, { module: NOT_A_FILTER }, { authz: { policy: 'other.yaml' } }, { peerAuthentication: null }] }));
    const refused = await runCli(['sidecar', '--config', inbound, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${inbound}: inbound.filters[0].limits: "limits" cannot be listed: it always comes right after the header checks (set it with limits)`);
    expect(refused.stderr).toContain(`${inbound}: inbound.filters[1].nosuch: no built-in filter is named "nosuch" (authz`);
    expect(refused.stderr).toContain(`${inbound}: inbound.filters[2].module: ${NOT_A_FILTER} does not export a filter`);
    expect(refused.stderr).toContain(`${inbound}: inbound.filters[3].authz: its settings are given by inbound.policy already; give them in one place`);
    expect(refused.stderr).toContain(`${inbound}: inbound.filters[4].peerAuthentication: "peerAuthentication" cannot be listed`);

    const outbound = configFile('bad-outbound', webConfig({
      filters: [{ authz: { extAuthz: { address: 'nope' } } }, { module: TAG_MODULE, settings: { value: '' } }, { module: TAG_MODULE }],
      routes: [{ host: 'orders', address: '127.0.0.1:1', spiffeId: ORDERS_ID, filters: { cors: false, tag: 'yes' } }],
    }));
    const refusedOut = await runCli(['sidecar', '--config', outbound, '--check-config']);
    expect(refusedOut.code).toBe(1);
    expect(refusedOut.stderr).toContain(`${outbound}: outbound.filters[0].authz.extAuthz.address: "nope" is not HOST:PORT`);
    expect(refusedOut.stderr).toContain(`${outbound}: outbound.filters[1].settings.value:`);
    expect(refusedOut.stderr).toContain(`${outbound}: outbound.filters[2].settings: the chain has a "tag" filter already (outbound.filters[1])`);
    expect(refusedOut.stderr).toContain(`${outbound}: outbound.routes[0].filters.cors: the outbound listener has no "cors" filter for this route to change`);
    expect(refusedOut.stderr).toContain(`${outbound}: outbound.routes[0].filters.tag: must be false (off for this route) or the filter's settings for this route`);

    const tcp = configFile('bad-tcp', ordersConfig({ app: 'tcp://127.0.0.1:1', filters: [{ module: TAG_MODULE }] }));
    expect((await runCli(['sidecar', '--config', tcp, '--check-config'])).stderr).toContain(
      `${tcp}: inbound.filters[0].settings: a tcp:// app's connections carry no HTTP request for "tag" to read: only authz judges them`,
    );
    const unauthorized = configFile('bad-authz', ordersConfig({ policy: undefined, filters: [{ module: TAG_MODULE }] }));
    expect((await runCli(['sidecar', '--config', unauthorized, '--check-config'])).stderr).toContain(`${unauthorized}: inbound: give exactly one of policy`);
    const missing = configFile('bad-module', ordersConfig({ filters: [{ module: './no-such-filter.mjs' }] }));
    expect((await runCli(['sidecar', '--config', missing, '--check-config'])).stderr).toContain(`${missing}: inbound.filters[0].module: file "./no-such-filter.mjs" not found`);
  });

  it('runs custom filters where the list puts them: before authz they see every request and answer every reply', async () => {
    const sidecar = await runSidecar(dir.dir, 'tagged-orders', ordersConfig({ filters: [{ module: TAG_MODULE, settings: { value: 'orders' } }] }));
    sidecars.push(sidecar);
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      const before = seenHeaders.length;
      const allowed = await call(sidecar.inbound!, version, '/api/x', { 'x-meshward-principal': ADMIN_ID, 'x-forwarded-client-cert': 'By=x;URI=y' });
      expect(allowed).toMatchObject({ status: 200, headers: { 'x-tag': 'orders' } });
      expect(seenHeaders[before]).toMatchObject({ 'x-tag': 'orders', 'x-tag-saw-identity': 'none', 'x-meshward-principal': WEB_ID });
      // The policy's 403 goes back through the tag filter's response side.
      const denied = await call(sidecar.inbound!, version, '/admin', {});
      expect(denied).toMatchObject({ status: 403, headers: { 'x-tag': 'orders' } });
      expect(seenHeaders.length).toBe(before + 1);
    }
  });

  it('runs a filter placed after authz only on what authz let through', async () => {
    const sidecar = await runSidecar(dir.dir, 'authz-first', ordersConfig({ filters: [{ authz: {} }, { module: TAG_MODULE }] }));
    sidecars.push(sidecar);
    expect(await call(sidecar.inbound!, 'HTTP/1.1', '/api/x', {})).toMatchObject({ status: 200, headers: { 'x-tag': 'tagged' } });
    const denied = await call(sidecar.inbound!, 'HTTP/1.1', '/admin', {});
    expect(denied.status).toBe(403);
    expect(denied.headers['x-tag']).toBeUndefined();
  });

  it('lets an outbound route turn a filter off or give it settings of its own', async () => {
    const orders = await runSidecar(dir.dir, 'plain-orders', ordersConfig({}));
    sidecars.push(orders);
    const route = (host: string, filters?: object) => ({ host, address: orders.inbound, spiffeId: ORDERS_ID, ...(filters ? { filters } : {}) });
    const web = await runSidecar(dir.dir, 'tagging-web', webConfig({
      filters: [{ module: TAG_MODULE, settings: { value: 'web' } }],
      routes: [route('orders'), route('untagged', { tag: false }), route('retagged', { tag: { value: 'other' } })],
    }));
    sidecars.push(web);
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      for (const [host, tag] of [['orders', 'web'], ['untagged', undefined], ['retagged', 'other']] as const) {
        const before = seenHeaders.length;
        // The app behind web forges identity headers: web's filters do not see them either.
        const answer = await outboundCall(web.outbound!, version, host, { 'x-meshward-principal': ADMIN_ID });
        expect(answer.status, `${version} ${host}`).toBe(200);
        expect(answer.headers['x-tag']).toBe(tag);
        expect(seenHeaders[before]!['x-tag']).toBe(tag);
        if (tag !== undefined) expect(seenHeaders[before]!['x-tag-saw-identity']).toBe('none');
      }
    }
  });
});

describe('rateLimit and jwt filters', () => {
  const ISSUER = 'https://idp.example.org';
  let signingKey: CryptoKey;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    signingKey = privateKey;
    writeFileSync(join(dir.dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
  });

  const token = (sub: string) =>
    new SignJWT({ sub }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience('orders').setIssuedAt().setExpirationTime('5m').sign(signingKey);

  const SLOW = { requestsPerSecond: 0.001 };

  it('limits inbound requests per header value and, after a jwt filter, per verified claim', async () => {
    const sidecar = await runSidecar(dir.dir, 'limited-orders', ordersConfig({
      filters: [
        // Relative to the config file's directory.
        { jwt: { issuer: ISSUER, audiences: ['orders'], jwksFile: 'jwks.json' } },
        {
          rateLimit: {
            limits: [
              { name: 'per-tenant', match: { paths: ['/api/tenant/**'] }, ...SLOW, burst: 2, per: 'header:x-tenant' },
              { name: 'per-user', match: { paths: ['/api/users/**'] }, ...SLOW, burst: 1, per: 'claim:sub' },
            ],
          },
        },
      ],
    }));
    sidecars.push(sidecar);
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      const tenant = `tenant-${version}`;
      expect((await call(sidecar.inbound!, version, '/api/tenant/1', { 'x-tenant': tenant })).status).toBe(200);
      expect((await call(sidecar.inbound!, version, '/api/tenant/1', { 'x-tenant': tenant })).status).toBe(200);
      const limited = await call(sidecar.inbound!, version, '/api/tenant/1', { 'x-tenant': tenant });
      expect(limited).toMatchObject({ status: 429, headers: { 'retry-after': '1000' } });
      expect(JSON.parse(limited.body)).toMatchObject({ error: 'rate_limited', limit: 'per-tenant' });
      expect((await call(sidecar.inbound!, version, '/api/tenant/1', { 'x-tenant': `${tenant}-other` })).status).toBe(200);

      const user = `user-${version}`;
      const bearer = { authorization: `Bearer ${await token(user)}` };
      expect((await call(sidecar.inbound!, version, '/api/users/1', bearer)).status).toBe(200);
      expect((await call(sidecar.inbound!, version, '/api/users/1', bearer)).status).toBe(429);
      expect((await call(sidecar.inbound!, version, '/api/users/1', { authorization: `Bearer ${await token(`${user}-other`)}` })).status).toBe(200);
      const forged = await call(sidecar.inbound!, version, '/api/users/1', { authorization: `Bearer ${(await token(user)).slice(0, -4)}AAAA` });
      expect(forged).toMatchObject({ status: 401, headers: { 'www-authenticate': expect.stringContaining('invalid_token') } });
    }
  });

  it('limits outbound requests, except on a route that turns the limit off', async () => {
    const orders = await runSidecar(dir.dir, 'unlimited-orders', ordersConfig({}));
    sidecars.push(orders);
    const route = (host: string, filters?: object) => ({ host, address: orders.inbound, spiffeId: ORDERS_ID, ...(filters ? { filters } : {}) });
    const web = await runSidecar(dir.dir, 'limited-web', webConfig({
      filters: [{ rateLimit: { limits: [{ name: 'egress', ...SLOW, burst: 1, per: 'global' }] } }],
      routes: [route('orders'), route('unlimited', { rateLimit: false })],
    }));
    sidecars.push(web);
    expect((await outboundCall(web.outbound!, 'HTTP/1.1', 'orders', {})).status).toBe(200);
    expect((await outboundCall(web.outbound!, 'HTTP/2', 'orders', {})).status).toBe(429);
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) expect((await outboundCall(web.outbound!, version, 'unlimited', {})).status).toBe(200);
  });

  it('refuses a limit keyed by what no earlier filter provides', async () => {
    const file = configFile('bad-keys', ordersConfig({
      filters: [{ rateLimit: { limits: [{ name: 'a', requestsPerSecond: 1, per: 'claim:sub' }, { name: 'b', requestsPerSecond: 1, per: 'apiKey' }] } }],
    }));
    const refused = await runCli(['sidecar', '--config', file, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file}: inbound.filters[0].rateLimit.limits[0].per: "claim:sub" reads what the jwt filter puts on the request: list jwt before this filter`);
    expect(refused.stderr).toContain(`${file}: inbound.filters[0].rateLimit.limits[1].per: "apiKey" reads what the apiKey filter puts on the request: list apiKey before this filter`);
  });
});

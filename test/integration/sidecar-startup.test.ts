import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { auditRecords, serveCa, TD, token, type ServingCa } from '../helpers/ca.js';
import { runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, outputContaining, runSidecar, WEB_ID, type Mesh } from '../helpers/sidecar.js';

// Issue 13, items 10 and 11: the sidecar's first day. A start that fails for a reason the operator can fix must not
// spend the one-time join token; a restart within the SVID's life uses the SVID kept in the state directory; a
// sidecar started before its CA waits for it (not ready meanwhile) up to a start deadline.

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function caIdentity(address: string, spiffeId: string, extra: object = {}) {
  return { ca: { address, bundle: 'ca/bundle.pem', spiffeId, token: 'env:MESHWARD_JOIN_TOKEN', ttl: '30s', ...extra } };
}

describe('sidecar start-up: config errors name the config as given and the field, in plain words, without the usage', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);
  const run = (name: string, config: object, env: NodeJS.ProcessEnv = {}) => {
    writeFileSync(join(dir, `${name}.yaml`), stringify(config));
    return runCli(['sidecar', '--config', `./${name}.yaml`], { cwd: dir, env });
  };

  it('what the schema finds: required fields and wrong kinds of value', async () => {
    const r = await run('schema', { identity: { files: { cert: 'c.pem', key: 'k.pem', bundle: 'b.pem' } }, outbound: { listen: '127.0.0.1:0', routes: 'none' }, drainTimeout: 10 });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      [
        'meshward sidecar: invalid configuration',
        './schema.yaml: trustDomain: is required',
        './schema.yaml: outbound.routes: must be a list, not "none"',
        './schema.yaml: drainTimeout: must be a string, not 10',
        '',
      ].join('\n'),
    );
  });

  it('every file it reads that is not there, each named by its field, all at once', async () => {
    const r = await run('files', {
      trustDomain: TD,
      identity: { files: { cert: 'svid.pem', key: '/nonexistent/svid.key', bundle: 'bundle.pem' } },
      inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:1', policy: 'policies/orders.yaml' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      [
        'meshward sidecar: invalid configuration',
        `./files.yaml: identity.files.cert: file "svid.pem" not found (resolved to ${join(dir, 'svid.pem')})`,
        './files.yaml: identity.files.key: file "/nonexistent/svid.key" not found',
        `./files.yaml: identity.files.bundle: file "bundle.pem" not found (resolved to ${join(dir, 'bundle.pem')})`,
        `./files.yaml: inbound.policy: file "policies/orders.yaml" not found (resolved to ${join(dir, 'policies/orders.yaml')})`,
        '',
      ].join('\n'),
    );
  });

  it('several inbound listeners: two on one port, a policy file that is not there and a port already taken are each named by the entry', { timeout: 60_000 }, async () => {
    // A mesh of its own: the next test makes one in the directory itself.
    const mesh = await makeMesh(mkdtempSync(join(dir, 'several-')));
    const svid = await mesh.issue('orders', ORDERS_ID);
    writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    const base = { trustDomain: TD, identity: { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } }, admin: { listen: '127.0.0.1:0' } };
    const http = { listen: '127.0.0.1:0', app: 'http://127.0.0.1:8080', policy: 'policy.yaml' };
    const grpc = { listen: '127.0.0.1:0', app: 'h2c://127.0.0.1:9090', policy: 'policy.yaml' };

    const port = await freePort();
    const twice = await run('twice', { ...base, inbound: [{ ...http, listen: `127.0.0.1:${port}` }, { ...grpc, listen: `0.0.0.0:${port}` }] });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toBe(`meshward sidecar: invalid configuration\n./twice.yaml: inbound[1].listen: port ${port} is inbound[0]'s already: each inbound listener needs a port of its own\n`);

    const missing = await run('missing', { ...base, inbound: [http, { ...grpc, policy: 'grpc-policy.yaml' }] });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`meshward sidecar: invalid configuration\n./missing.yaml: inbound[1].policy: file "grpc-policy.yaml" not found (resolved to ${join(dir, 'grpc-policy.yaml')})\n`);

    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
    try {
      const busy = await run('busy', { ...base, inbound: [http, { ...grpc, listen: taken }] });
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain(`./busy.yaml: inbound[1].listen: cannot listen on ${taken}`);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('what shows only at start: a state directory that cannot be made, a token that is not there', async () => {
    await makeMesh(dir); // ca/bundle.pem, which the configs name
    writeFileSync(join(dir, 'a-file'), '');
    const base = { trustDomain: TD, outbound: { listen: '127.0.0.1:0', routes: [] }, admin: { listen: '127.0.0.1:0' } };
    const noDir = await run('nodir', { ...base, identity: caIdentity('127.0.0.1:1', WEB_ID, { stateDir: 'a-file/state' }) });
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toContain(`./nodir.yaml: identity.ca.stateDir: ${join(dir, 'a-file/state')}: cannot keep the SVID there: a part of the path is not a directory\n`);
    const noToken = await run('notoken', { ...base, identity: caIdentity('127.0.0.1:1', WEB_ID) });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain(
      `./notoken.yaml: identity.ca.token: the environment variable MESHWARD_JOIN_TOKEN is not set, and no SVID kept in ${join(dir, 'notoken.state')} can be used\n`,
    );
    for (const r of [noDir, noToken]) expect(r.stderr).not.toContain('Usage:');
  });
});

describe('sidecar start-up: a failed start does not spend the join token', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let ca: ServingCa;
  beforeAll(async () => {
    mesh = await makeMesh(dir);
    ca = await serveCa(mesh.caDir);
  });
  afterAll(async () => {
    await ca?.stop();
    cleanup();
  });

  it('a missing policy file: exits 1 naming the config as given and the field, no usage; once fixed, the same token works', async () => {
    const joinToken = await token(mesh.caDir, ORDERS_ID);
    const config = {
      trustDomain: TD,
      identity: caIdentity(ca.address, ORDERS_ID),
      inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:1', policy: 'orders-policy.yaml' },
      admin: { listen: '127.0.0.1:0' },
    };
    writeFileSync(join(dir, 'orders.yaml'), stringify(config));
    const failed = await runCli(['sidecar', '--config', './orders.yaml'], { cwd: dir, env: { MESHWARD_JOIN_TOKEN: joinToken } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`./orders.yaml: inbound.policy: file "orders-policy.yaml" not found (resolved to ${join(dir, 'orders-policy.yaml')})`);
    expect(failed.stderr).not.toContain('Usage:');

    writeFileSync(join(dir, 'orders-policy.yaml'), ALLOW_WEB_GET_ORDERS);
    const orders = await runSidecar(dir, 'orders', config, { MESHWARD_JOIN_TOKEN: joinToken });
    expect(JSON.parse((await httpRequest(orders.admin, '/certs')).body)).toMatchObject({ loaded: true, spiffeId: ORDERS_ID });
    await orders.stop();
  });

  it('a port already taken: exits 1 naming the field; once it is free, the same token works', async () => {
    const joinToken = await token(mesh.caDir, WEB_ID);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
    const config = { trustDomain: TD, identity: caIdentity(ca.address, WEB_ID), outbound: { listen: taken, routes: [] }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(join(dir, 'web.yaml'), stringify(config));
    const failed = await runCli(['sidecar', '--config', join(dir, 'web.yaml')], { env: { MESHWARD_JOIN_TOKEN: joinToken } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`${join(dir, 'web.yaml')}: outbound.listen: cannot listen on ${taken}`);
    expect(failed.stderr).toContain('EADDRINUSE');
    expect(failed.stderr).not.toContain('Usage:');

    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const web = await runSidecar(dir, 'web', config, { MESHWARD_JOIN_TOKEN: joinToken });
    expect(web.outbound).toBe(taken);
    await web.stop();
  });

  it('a restart uses the SVID kept in the state directory: no token, renewed over mTLS; the key is 0600 in a 0700 directory', async () => {
    const stateDir = join(dir, 'web.state');
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(stateDir, 'svid.key')).mode & 0o777).toBe(0o600);
    const issuedBefore = auditRecords(join(mesh.caDir, 'audit.log')).filter((r) => r.spiffeId === WEB_ID && r.decision === 'issued');

    // No MESHWARD_JOIN_TOKEN at all: the kept SVID is used, and renewed within seconds (it lives 30 s, back-dated 30 s).
    const web = await runSidecar(dir, 'web', { trustDomain: TD, identity: caIdentity(ca.address, WEB_ID), outbound: { listen: '127.0.0.1:0', routes: [] }, admin: { listen: '127.0.0.1:0' } });
    expect(web.output()).toContain('SVID kept from the last run is still valid; no join token used');
    expect((await httpRequest(web.admin, '/readyz')).status).toBe(200);
    await outputContaining(web, '"msg":"SVID received"');
    expect(web.output()).toContain('identity rotated; new connections use it');
    await web.stop();

    const issuedAfter = auditRecords(join(mesh.caDir, 'audit.log')).filter((r) => r.spiffeId === WEB_ID && r.decision === 'issued');
    expect(issuedAfter.slice(issuedBefore.length).map((r) => r.method)).toEqual(['renewal']);
    expect(statSync(join(stateDir, 'svid.key')).mode & 0o777).toBe(0o600);
  });
});

describe('sidecar start-up: the CA comes after the sidecar', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let ca: ServingCa | undefined;
  beforeAll(async () => {
    mesh = await makeMesh(dir);
    writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
  });
  afterAll(async () => {
    await ca?.stop();
    cleanup();
  });

  it('waits, not ready and carrying no traffic, logging one plain line per attempt; ready once the CA is up', async () => {
    const caAddress = `127.0.0.1:${await freePort()}`;
    const config = {
      trustDomain: TD,
      identity: caIdentity(caAddress, ORDERS_ID, { startDeadline: '1m' }),
      inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:1', policy: 'policy.yaml' },
      outbound: { listen: '127.0.0.1:0', routes: [{ host: 'web', address: '127.0.0.1:1', spiffeId: WEB_ID }] },
      admin: { listen: '127.0.0.1:0' },
    };
    writeFileSync(join(dir, 'orders.yaml'), stringify(config));
    const [joinToken, client] = [await token(mesh.caDir, ORDERS_ID), await mesh.issue('web-client', WEB_ID)];
    const sidecar = await startCli(['sidecar', '--config', join(dir, 'orders.yaml')], /^.*"msg":"waiting for the CA".*$/m, { env: { MESHWARD_JOIN_TOKEN: joinToken } });
    try {
      const attempt = JSON.parse(sidecar.match[0]) as Record<string, unknown>;
      expect(attempt).toMatchObject({ level: 'warn', address: caAddress, reason: 'connection refused', attempt: 1 });
      const bound = JSON.parse(/^.*"msg":"listening; not ready until the identity is held".*$/m.exec(sidecar.output())![0]) as { inbound: string; outbound: string; admin: string };

      // A SIGHUP (a policy reload) while waiting does not end the start.
      sidecar.child.kill('SIGHUP');
      expect((await httpRequest(bound.admin, '/readyz')).status).toBe(503);
      expect(JSON.parse((await httpRequest(bound.admin, '/certs')).body)).toEqual({ loaded: false });
      // Outbound: a routed host is "try again", not a request sent without an identity.
      const early = await httpRequest(bound.outbound, '/', { headers: { host: 'web' } });
      expect(early.status).toBe(503);
      // Inbound: no certificate to offer yet, so even a valid client's handshake fails.
      const [host, port] = [bound.inbound.slice(0, bound.inbound.lastIndexOf(':')), Number(bound.inbound.slice(bound.inbound.lastIndexOf(':') + 1))];
      const handshake = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host, port, cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(mesh.bundle), rejectUnauthorized: false });
        socket.once('secureConnect', () => (socket.destroy(), resolve('connected')));
        socket.once('error', (err) => resolve(`refused: ${err.message}`));
      });
      expect(handshake).toMatch(/^refused: .*handshake failure/);

      ca = await serveCa(mesh.caDir, {}, ['--listen', caAddress]);
      await outputContaining(sidecar, '"msg":"sidecar ready"', 20_000);
      expect((await httpRequest(bound.admin, '/readyz')).status).toBe(200);
      expect(sidecar.output()).not.toMatch(/No connection established|Resolution note/);
    } finally {
      await stopChild(sidecar.child);
    }
  }, 60_000);

  it('gives up after the start deadline with one clear message, and exits 1', async () => {
    const caAddress = `127.0.0.1:${await freePort()}`;
    const config = { trustDomain: TD, identity: caIdentity(caAddress, WEB_ID, { startDeadline: '2s' }), outbound: { listen: '127.0.0.1:0', routes: [] }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(join(dir, 'late.yaml'), stringify(config));
    const r = await runCli(['sidecar', '--config', join(dir, 'late.yaml')], { env: { MESHWARD_JOIN_TOKEN: await token(mesh.caDir, WEB_ID) } });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(`meshward sidecar: no SVID from the CA at ${caAddress} within the start deadline (2s): connection refused`);
    expect(lines.filter((l) => l.includes('"msg":"waiting for the CA"')).length).toBeGreaterThanOrEqual(1);
    expect(r.stderr).not.toMatch(/No connection established|Resolution note|Usage:/);
  });

  it('fails at once, without waiting, when the CA refuses the token', async () => {
    ca ??= await serveCa(mesh.caDir);
    const config = { trustDomain: TD, identity: caIdentity(ca.address, WEB_ID, { stateDir: 'refused.state' }), outbound: { listen: '127.0.0.1:0', routes: [] }, admin: { listen: '127.0.0.1:0' } };
    writeFileSync(join(dir, 'refused.yaml'), stringify(config));
    const r = await runCli(['sidecar', '--config', join(dir, 'refused.yaml')], { env: { MESHWARD_JOIN_TOKEN: 'not-a-join-token' } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(
      `meshward sidecar: cannot get an SVID for ${WEB_ID} from the CA at ${ca.address}: the join token is not valid: it is malformed or was not issued by this CA`,
    );
    expect(r.stderr).not.toContain('waiting for the CA');
  });
});

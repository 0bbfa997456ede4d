// The sockets a sidecar serves its identity on (issue 16): who may open them, what happens to one left by a crash,
// to one another process serves, to a file that is not a socket, and to the socket at shutdown; a stream opened
// before the identity is held; SDS on a loopback port; and `--check-config`. Real `meshward sidecar` processes.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { serveCa, TD, token } from '../helpers/ca.js';
import { runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { makeMesh, outputContaining, runSidecar, WEB_ID, type Mesh } from '../helpers/sidecar.js';
import { fetchSecrets, firstRequest, SecretsStream, sdsClient } from '../conformance/sds-client.js';

describe('identity sockets', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let identity: object;

  beforeAll(async () => {
    mesh = await makeMesh(dir);
    const svid = await mesh.issue('web', WEB_ID);
    identity = { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } };
  });

  afterAll(cleanup);

  const config = (extra: object) => ({ trustDomain: TD, identity, admin: { listen: '127.0.0.1:0' }, drainTimeout: '1s', ...extra });

  /** FetchSecrets over `target`: the SPIFFE ID of the SVID served there. */
  async function servedId(target: string): Promise<string> {
    const client = sdsClient(target);
    try {
      const [secret] = (await fetchSecrets(client, firstRequest([WEB_ID]))).resources;
      return secret!.name;
    } finally {
      client.close();
    }
  }

  it('with a group, the socket is 0660 and the group\'s; without, 0600 and this user\'s', async () => {
    const daemonGid = Number(execFileSync('getent', ['group', 'daemon'], { encoding: 'utf8' }).split(':')[2]);
    const sidecar = await runSidecar(dir, 'grouped', config({ workloadApi: { listen: 'unix:grouped.sock', group: 'daemon' }, sds: { listen: 'unix:private.sock' } }));
    try {
      const grouped = statSync(join(dir, 'grouped.sock'));
      expect([grouped.isSocket(), grouped.mode & 0o777, grouped.gid]).toEqual([true, 0o660, daemonGid]);
      const own = statSync(join(dir, 'private.sock'));
      expect([own.isSocket(), own.mode & 0o777, own.uid, own.gid]).toEqual([true, 0o600, process.getuid!(), process.getgid!()]);
    } finally {
      await sidecar.stop();
    }
  });

  it('a socket left by a crash is replaced; one a live process serves is not taken; the socket is removed at shutdown', async () => {
    const socket = join(dir, 'sds.sock');
    const crashed = await runSidecar(dir, 'first', config({ sds: { listen: `unix:${socket}` } }));
    await stopChild(crashed.child, 'SIGKILL');
    expect(statSync(socket).isSocket()).toBe(true);

    const next = await runSidecar(dir, 'second', config({ sds: { listen: `unix:${socket}` } }));
    expect(await outputContaining(next, 'a stale socket (nothing serves on it) is replaced')).toContain(socket);
    expect(await servedId(`unix:${socket}`)).toBe(WEB_ID);

    // Another sidecar on the same path fails to start, naming the field, and leaves the live one serving.
    const configFile = join(dir, 'third.yaml');
    writeFileSync(configFile, stringify(config({ sds: { listen: `unix:${socket}` } })));
    const refused = await runCli(['sidecar', '--config', configFile]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${configFile}: sds.listen: ${socket} is in use: another process serves on it`);
    expect(await servedId(`unix:${socket}`)).toBe(WEB_ID);

    expect(await next.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('a path that is not a socket is never overwritten, and --check-config says so first', async () => {
    const file = join(dir, 'precious.txt');
    writeFileSync(file, 'keep me');
    const configFile = join(dir, 'clobber.yaml');
    writeFileSync(configFile, stringify(config({ workloadApi: { listen: `unix:${file}` } })));
    const checked = await runCli(['sidecar', '--config', configFile, '--check-config']);
    const started = await runCli(['sidecar', '--config', configFile]);
    for (const r of [checked, started]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${configFile}: workloadApi.listen: ${file} exists and is not a socket; it is never overwritten`);
    }
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('--check-config passes a good config without starting anything, and names every problem of a bad one', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, stringify(config({ sds: { listen: 'unix:check.sock', group: 'daemon' }, workloadApi: { listen: 'unix:check.sock', group: 1 } })));
    const ok = await runCli(['sidecar', '--config', good, '--check-config']);
    expect([ok.code, ok.stdout.trim(), ok.stderr]).toEqual([0, `${good}: OK`, '']);
    expect(existsSync(join(dir, 'check.sock'))).toBe(false);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify(config({ sds: { listen: 'unix:no-such-dir/sds.sock', group: 'no-such-group-here' } })));
    const refused = await runCli(['sidecar', '--config', bad, '--check-config']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${bad}: sds.listen: the socket's directory ${join(dir, 'no-such-dir')} does not exist`);
    expect(refused.stderr).toContain(`${bad}: sds.group: there is no group "no-such-group-here" on this system`);

    writeFileSync(bad, stringify(config({ sds: { listen: '10.0.0.1:8234' } })));
    const network = await runCli(['sidecar', '--config', bad, '--check-config']);
    expect(network.code).toBe(1);
    expect(network.stderr).toContain(`${bad}: sds.listen: "10.0.0.1:8234" is not on loopback`);
  });

  it('SDS on a loopback port another process holds: the sidecar does not start, and says which field', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = `127.0.0.1:${(holder.address() as { port: number }).port}`;
    try {
      const configFile = join(dir, 'taken.yaml');
      writeFileSync(configFile, stringify(config({ sds: { listen: taken } })));
      const refused = await runCli(['sidecar', '--config', configFile]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${configFile}: sds.listen: cannot listen on ${taken}: `);
    } finally {
      holder.close();
    }
  });

  it('SDS on a loopback port: served, with a warning that every local user can reach it', async () => {
    const sidecar = await runSidecar(dir, 'tcp', config({ sds: { listen: '127.0.0.1:0' } }));
    try {
      const address = /"sds":"(127\.0\.0\.1:\d+)"/.exec(sidecar.output())![1]!;
      expect(await servedId(address)).toBe(WEB_ID);
      expect(sidecar.output()).toMatch(/"level":"warn"[^\n]*every local user can connect and read the private key/);
    } finally {
      await sidecar.stop();
    }
  });

  it('a stream opened while the sidecar waits for its CA gets the SVID as soon as it is issued', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const caAddress = `127.0.0.1:${port}`;
    const configFile = join(dir, 'early.yaml');
    writeFileSync(
      configFile,
      stringify({
        trustDomain: TD,
        identity: { ca: { address: caAddress, bundle: mesh.bundle, spiffeId: WEB_ID, token: 'env:MESHWARD_JOIN_TOKEN' } },
        sds: { listen: 'unix:early.sock' },
        admin: { listen: '127.0.0.1:0' },
        drainTimeout: '1s',
      }),
    );
    const early = await startCli(['sidecar', '--config', configFile], /"msg":"listening; not ready until the identity is held"/, {
      env: { MESHWARD_JOIN_TOKEN: await token(mesh.caDir, WEB_ID) },
    });
    const client = sdsClient(`unix:${join(dir, 'early.sock')}`);
    const stream = new SecretsStream(client);
    stream.send(firstRequest(['default']));
    const ca = await serveCa(mesh.caDir, {}, ['--listen', caAddress]);
    try {
      const response = await stream.next(20_000);
      expect(response.resources.map((s) => s.name)).toEqual(['default']);
      await outputContaining(early, '"msg":"sidecar ready"');
    } finally {
      stream.close();
      client.close();
      await stopChild(early.child);
      await ca.stop();
    }
  });
});

// Policy reloads in process, where the counters behind `stats()` can be read directly.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startExtAuthzServer, type ExtAuthzServer } from '../../src/authz/ext-authz/index.js';
import { REPO_ROOT, tempDir } from '../helpers/cli.js';

const FIXTURES = resolve(REPO_ROOT, 'test/fixtures/authz');
const running: { server: ExtAuthzServer; cleanup: () => void }[] = [];

afterEach(async () => {
  for (const { server, cleanup } of running.splice(0)) {
    await server.close(100);
    cleanup();
  }
});

async function start() {
  const { dir, cleanup } = tempDir('meshward-authz-reload-');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, readFileSync(join(FIXTURES, 'policy.yaml')));
  const server = await startExtAuthzServer({ policyFile, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
  running.push({ server, cleanup });
  return { server, policyFile, dir };
}

async function eventually(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ext_authz policy reloads', () => {
  it('counts reloads and rejections from SIGHUP-style reloads', async () => {
    const { server, policyFile } = await start();
    expect(server.stats()).toEqual({ policy: { reloads: 0, rejected: 0 } });
    await server.reloadPolicy();
    expect(server.stats().policy).toEqual({ reloads: 1, rejected: 0 });
    writeFileSync(policyFile, readFileSync(join(FIXTURES, 'policy-invalid.yaml')));
    await server.reloadPolicy();
    expect(server.stats().policy.rejected).toBeGreaterThanOrEqual(1);
  });

  it('reloads on a change to the file, ignores changes to other files in its directory', async () => {
    const { server, policyFile, dir } = await start();
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    writeFileSync(policyFile, `${readFileSync(policyFile, 'utf8')}\n# a comment changes the content\n`);
    await eventually('the reload', () => server.stats().policy.reloads === 1);
    writeFileSync(join(dir, 'unrelated.txt'), 'y');
    writeFileSync(policyFile, readFileSync(join(FIXTURES, 'policy-invalid.yaml')));
    await eventually('the rejection', () => server.stats().policy.rejected === 1);
    expect(server.stats().policy.reloads).toBe(1);
  });

  it('reloads a changed policy even while another file in its directory changes all the time (a log beside it)', async () => {
    const { server, policyFile, dir } = await start();
    const busy = setInterval(() => writeFileSync(join(dir, 'audit.jsonl'), `${Date.now()}\n`, { flag: 'a' }), 10);
    try {
      writeFileSync(policyFile, `${readFileSync(policyFile, 'utf8')}\n# changed while a log beside it is written\n`);
      await eventually('the reload', () => server.stats().policy.reloads === 1);
    } finally {
      clearInterval(busy);
    }
  });

  it('refuses to start with an invalid policy, with the ConfigError', async () => {
    const start = startExtAuthzServer({
      policyFile: join(FIXTURES, 'policy-invalid.yaml'),
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    await expect(start).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringContaining('rules[0].from.principals[0]') });
  });
});

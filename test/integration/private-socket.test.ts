import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindPrivateSocket } from '../../src/identity-api/private-socket.js';
import { createLogger } from '../../src/telemetry/index.js';
import { tempDir } from '../helpers/cli.js';

// How the identity socket is made (private-socket.ts): never reachable by another user, not even for an instant.
// The socket is bound where only this user can go, and appears at its path only once its mode is final.

describe('private socket', () => {
  const { dir, cleanup } = tempDir();
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    cleanup();
  });

  it('is bound in a directory only this user can enter, and appears at its path with its final mode', async () => {
    const path = join(dir, 'identity.sock');
    const atBind: Array<{ dirMode: number; dirOwner: number; pathExists: boolean; inDir: string }> = [];
    const server = createServer((socket) => socket.end('served'));
    servers.push(server);
    const socket = await bindPrivateSocket(
      path,
      (temp) =>
        new Promise((resolve) => {
          const parent = statSync(dirname(temp));
          atBind.push({ dirMode: parent.mode & 0o777, dirOwner: parent.uid, pathExists: existsSync(path), inDir: dirname(dirname(temp)) });
          server.listen(temp, () => resolve());
        }),
      { logger: createLogger('test', { level: 'silent' }) },
    );
    expect(atBind).toEqual([{ dirMode: 0o700, dirOwner: process.getuid!(), pathExists: false, inDir: dir }]);
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
    // The private directory is gone; the socket serves at its path.
    expect(readdirSync(dir)).toEqual(['identity.sock']);
    expect(await new Promise((resolve) => connect(path).on('data', (d) => resolve(d.toString())))).toBe('served');
    await socket.remove();
    expect(existsSync(path)).toBe(false);
  });
});

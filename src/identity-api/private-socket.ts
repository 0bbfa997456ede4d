import { chmod, chown, lstat, mkdtemp, rename, rm, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from '../telemetry/index.js';

// A Unix socket whose file permissions are the boundary (as for Istio's SDS socket): whoever can connect gets the
// private key. A socket is created with the process's umask (often 0755-ish), and any user could connect between
// bind() and a chmod() after it; so the socket is bound inside a fresh directory only this user can enter
// (mkdtemp makes it 0700), given its mode and group there, and then renamed onto its path, which the rename
// replaces in one step. Nobody else can reach it before it is 0600 (0660 with a group).

export interface PrivateSocket {
  /** Removes the socket file, if it is still the one made here (a newer process may have taken the path over). */
  remove(): Promise<void>;
}

export interface PrivateSocketOptions {
  /** Owner group: the socket is 0660 for it; without one, 0600. */
  gid?: number;
  logger: Logger;
}

/** Makes `path` a socket served by what `bind(tempPath)` binds. Throws an Error saying why it cannot. */
export async function bindPrivateSocket(path: string, bind: (tempPath: string) => Promise<void>, options: PrivateSocketOptions): Promise<PrivateSocket> {
  await refuseIfTaken(path, options.logger);
  // DIR/.XXXXXX (not join(), which would make DIR. a prefix in DIR's parent): the rename stays in one directory.
  const privateDir = await mkdtemp(`${dirname(path)}/.`).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot make a private directory beside ${path}: ${err.code ?? err.message}`);
  });
  try {
    const temp = join(privateDir, 's');
    await bind(temp);
    if (options.gid !== undefined) {
      await chown(temp, -1, options.gid).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot give the socket to group ${options.gid}: ${err.code ?? err.message} (this user must be a member of the group)`);
      });
    }
    await chmod(temp, options.gid === undefined ? 0o600 : 0o660);
    await rename(temp, path);
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
  const { ino } = await lstat(path);
  return {
    remove: async () => {
      const now = await lstat(path).catch(() => undefined);
      if (now?.ino === ino) await unlink(path).catch(() => undefined);
    },
  };
}

/**
 * A socket file left by a process that died is replaced; one a live process still serves is not taken from it, and
 * a path that is not a socket is never overwritten.
 */
async function refuseIfTaken(path: string, logger: Logger): Promise<void> {
  const stat = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`cannot check ${path}: ${err.code ?? err.message}`);
  });
  if (stat === undefined) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; it is never overwritten: remove it or choose another path`);
  const answer = await probe(path);
  if (answer === 'live') throw new Error(`${path} is in use: another process serves on it`);
  logger.info({ path }, 'a stale socket (nothing serves on it) is replaced');
}

function probe(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve('stale');
      else reject(new Error(`cannot check whether ${path} is in use: ${err.code ?? err.message}`));
    });
  });
}

import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// Child processes and temp dirs that the benchmark must leave behind on no path: normal end, error, Ctrl-C.

const children = new Set();
const dirs = new Set();

function killAll() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** An ephemeral port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a child with stderr (and stdout) going to `logFile`; returns it with a graceful `stop()`. */
export function startChild(command, args, { env, logFile, cwd }) {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    /** SIGTERM, then SIGKILL after `graceMs` (a --cpu-prof server writes its profile on the way out). */
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const result = await Promise.race([exited, sleep(graceMs).then(() => undefined)]);
        if (!result) child.kill('SIGKILL');
      }
      await exited;
      children.delete(child);
    },
  };
}

/** Polls `probe` until it resolves; fails with the child's log tail if the child exits or time runs out. */
export async function waitReady(probe, { child, timeoutMs = 20_000, what }) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before it was ready (code ${child.exitCode ?? child.signalCode})`);
    try {
      return await probe();
    } catch (err) {
      lastErr = err;
      await sleep(100);
    }
  }
  throw new Error(`${what} was not ready after ${timeoutMs} ms: ${lastErr?.message ?? 'no answer'}`);
}

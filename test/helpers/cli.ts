import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const MESHWARD_BIN = join(REPO_ROOT, 'bin/meshward.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `meshward` CLI as a child process and collects its output. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [MESHWARD_BIN, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, MESHWARD_LOG_LEVEL: process.env.MESHWARD_LOG_LEVEL ?? 'warn', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Starts a long-running CLI command; resolves once `ready` matches a line of its stderr or stdout. */
export function startCli(
  args: string[],
  ready: RegExp,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; maxOpenFiles?: number } = {},
): Promise<{ child: ChildProcess; output: () => string; match: RegExpMatchArray }> {
  return new Promise((resolvePromise, reject) => {
    const command = [process.execPath, MESHWARD_BIN, ...args];
    // `ulimit -n` in a shell that then becomes the CLI (exec): the child runs with that file-descriptor limit.
    const [file, ...argv] = opts.maxOpenFiles === undefined ? command : ['/bin/sh', '-c', 'ulimit -n "$0" && exec "$@"', String(opts.maxOpenFiles), ...command];
    const child = spawn(file!, argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, MESHWARD_LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`meshward ${args.join(' ')} did not become ready: ${out}`));
    }, opts.timeoutMs ?? 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolvePromise({ child, output: () => out, match: m });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`meshward ${args.join(' ')} exited with ${code} before it was ready: ${out}`));
    });
  });
}

/** Stops a child and waits for it to exit. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolvePromise) => {
    child.once('exit', (code) => resolvePromise(code));
    child.kill(signal);
  });
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(prefix = 'meshward-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** For a describe block: `path()` is a file name in a temporary directory made before each test and removed after it. */
export function fileInFreshDirEachTest(name: string): { path: () => string } {
  let made: { dir: string; cleanup: () => void } | undefined;
  beforeEach(() => {
    made = tempDir();
  });
  afterEach(() => made?.cleanup());
  return { path: () => join(made!.dir, name) };
}

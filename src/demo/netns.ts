import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';

// Two "pods" on this machine, for showing (and testing) transparent capture: two network namespaces of their own,
// joined by a veth pair made inside them (nothing is added to this machine's own network), each with loopback up.
// `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts, which is how web's app finds "orders" by name.
// Needs root. Everything is removed by remove(), which the caller runs on every path out.

export interface Pod {
  /** The network namespace's name, for `ip netns exec`. */
  netns: string;
  address: string;
}

export interface PodPair {
  web: Pod;
  orders: Pod;
  remove(): Promise<void>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Run as this UID (and GID of the same number), with no supplementary groups; otherwise as this process. */
  uid?: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/**
 * The command line that runs `argv` in a namespace, as `uid` if given. `ip netns exec` and setpriv each exec the
 * next, so it is one process, a child of this one; setpriv drops root after the namespace is entered, and has the
 * process killed should this one die without stopping it (so that nothing outlives a killed demo or test).
 */
function inNamespace(netns: string, argv: string[], uid?: number): string[] {
  const as = uid === undefined ? [] : [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  return ['ip', 'netns', 'exec', netns, 'setpriv', '--pdeathsig=SIGKILL', ...as, '--', ...argv];
}

/** Runs a command to its end; never rejects (a command that cannot start has code 127). */
export function run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: err.message }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export function runIn(netns: string, argv: string[], options: RunOptions = {}): Promise<CommandResult> {
  return run(inNamespace(netns, argv, options.uid), options);
}

export interface BackgroundProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the process printed what shows it is ready; rejects (the process stopped) if it exits first or takes too long. */
  ready: Promise<void>;
  /** SIGTERM, and SIGKILL if it has not exited within two seconds. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running command in a namespace. It is running on return, so that it can be registered for
 * stopping before it is ready: a demo interrupted while it starts must not leave it behind.
 */
export function startIn(netns: string, argv: string[], readyWhen: RegExp, options: RunOptions = {}): BackgroundProcess {
  const line = inNamespace(netns, argv, options.uid);
  const child = spawn(line[0]!, line.slice(1), { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(killer);
  };
  const timeoutMs = options.timeoutMs ?? 60_000;
  const ready = new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`${argv.join(' ')} (in ${netns}) ${why}: ${out.trim().split('\n').slice(-5).join('\n')}`)));
    };
    const timer = setTimeout(() => fail(`did not become ready within ${timeoutMs} ms`), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!settled && readyWhen.test(out)) {
        settled = true;
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => fail(`exited (${signal ?? `status ${code}`})`));
  });
  return { child, output: () => out, ready, stop };
}

async function ip(args: string[]): Promise<void> {
  const r = await run(['ip', ...args]);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/**
 * web (10.77.0.1) and orders (10.77.0.2), joined by a veth pair. The addresses exist only inside the two
 * namespaces, so every pair may use the same ones. In web's namespace each name in `ordersNames` resolves to
 * orders's address.
 */
export async function createPodPair(ordersNames: string[]): Promise<PodPair> {
  const id = randomBytes(4).toString('hex');
  const web: Pod = { netns: `mw-${id}-web`, address: '10.77.0.1' };
  const orders: Pod = { netns: `mw-${id}-orders`, address: '10.77.0.2' };
  const hostsDir = `/etc/netns/${web.netns}`;
  const created: string[] = [];
  const remove = async () => {
    // Deleting a namespace deletes its veth end, and the other end with it, and every rule inside it.
    for (const netns of created.splice(0)) await run(['ip', 'netns', 'delete', netns]);
    await rm(hostsDir, { recursive: true, force: true });
    // /etc/netns itself too, unless something else is in it.
    await rmdir('/etc/netns').catch(() => undefined);
  };
  try {
    for (const pod of [web, orders]) {
      await ip(['netns', 'add', pod.netns]);
      created.push(pod.netns);
      await ip(['-n', pod.netns, 'link', 'set', 'lo', 'up']);
    }
    await ip(['link', 'add', 'eth0', 'netns', web.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', orders.netns]);
    for (const pod of [web, orders]) {
      await ip(['-n', pod.netns, 'address', 'add', `${pod.address}/24`, 'dev', 'eth0']);
      await ip(['-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    }
    await mkdir(hostsDir, { recursive: true });
    await writeFile(`${hostsDir}/hosts`, `127.0.0.1 localhost\n${ordersNames.map((n) => `${orders.address} ${n}\n`).join('')}`);
  } catch (err) {
    await remove();
    throw err;
  }
  return { web, orders, remove };
}

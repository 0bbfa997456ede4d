// Real redis-server processes for the tests (Debian's redis-server and redis-tools; .ci/run installs them), on
// free loopback ports, each in its own temporary directory, with nothing saved to disk. Every server started here
// is killed when the test process exits, whatever way it exits (an exit handler, and the kernel's parent-death
// signal for a test process killed outright), so that no Redis outlives its tests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A port that was free a moment ago (the kernel's choice for port 0); Redis cannot be told to pick one itself. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ['--requirepass', 'x'] or the TLS ones. */
  args?: string[];
  /** A node of a Redis Cluster (its bus on another free port). */
  cluster?: boolean;
  /** With TLS only (--port 0 --tls-port P): the server's clients must use rediss://. */
  tls?: { cert: string; key: string; ca: string };
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly args: string[],
  ) {}

  /** Starts a server on a free port; resolves once it accepts connections. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'meshward-redis-'));
    const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.args ?? [])];
    if (options.tls) {
      args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.cert, '--tls-key-file', options.tls.key, '--tls-ca-cert-file', options.tls.ca, '--tls-auth-clients', 'no');
    } else {
      args.push('--port', String(port));
    }
    if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(await freePort()));
    const server = new RedisServer(port, dir, args);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server again on the same port (after stop()), with an empty data set. */
  async resume(): Promise<void> {
    this.output = '';
    // setpriv (util-linux) execs redis-server with a parent-death signal: it dies with the test process even when
    // that is killed outright, where no exit handler runs.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'redis-server', ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (this.output.includes('Ready to accept connections')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${this.output}`)));
    });
  }

  /** Kills the server (as a crash would) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing is answered, as with an overloaded Redis. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** Runs redis-cli against this server, e.g. cli('GET', 'key'); returns its output, trimmed. */
  async cli(...command: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...command]);
    return stdout.trim();
  }

  async close(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three masters on loopback, joined with `redis-cli --cluster create`, no replicas; resolves once the cluster is ok. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await RedisServer.start({ cluster: true }));
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      const cluster = new RedisCluster(nodes);
      await cluster.untilOk();
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.close()));
      throw err;
    }
  }

  /** The seed URL meshward is given: one node is enough, the others are discovered. */
  get url(): string {
    return `${this.nodes[0]!.url}?cluster=true`;
  }

  /** Polls every node until each reports cluster_state:ok (slots are assigned and the bus has gossiped). */
  private async untilOk(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(this.nodes.map((n) => n.cli('cluster', 'info')));
      if (states.every((s) => s.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not become ok:\n${states.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }
}

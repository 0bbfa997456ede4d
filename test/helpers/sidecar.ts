import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { initCaDir, TD } from './ca.js';
import { runCli, startCli, stopChild } from './cli.js';

// Test fixtures for `meshward sidecar`: a CA made with the real CLI, SVIDs from it, and sidecar child processes
// started from YAML configs on ephemeral ports.

export const WEB_ID = `spiffe://${TD}/ns/default/sa/web`;
export const ORDERS_ID = `spiffe://${TD}/ns/default/sa/orders`;

export const ALLOW_WEB_GET_ORDERS = `
defaultAction: deny
rules:
  - name: web-reads-orders
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { methods: ["GET", "POST"], paths: ["/api/orders", "/api/orders/**"] }
`;

export interface SvidFiles {
  cert: string;
  key: string;
}

export interface Mesh {
  dir: string;
  caDir: string;
  bundle: string;
  /** `meshward ca issue` → DIR/<name>.pem and .key; a DNS SAN `localhost` so that curl can verify the server too. */
  issue(name: string, spiffeId: string, extra?: string[]): Promise<SvidFiles>;
}

export async function makeMesh(dir: string): Promise<Mesh> {
  const caDir = await initCaDir(dir);
  return {
    dir,
    caDir,
    bundle: join(caDir, 'bundle.pem'),
    async issue(name, spiffeId, extra = []) {
      const out = join(dir, name);
      const r = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', spiffeId, '--dns', 'localhost', '--out', out, ...extra]);
      if (r.code !== 0) throw new Error(`ca issue failed: ${r.stderr}`);
      return { cert: `${out}.pem`, key: `${out}.key` };
    },
  };
}

export interface RunningSidecar {
  child: ChildProcess;
  configFile: string;
  inbound?: string;
  /** Every inbound listener, in the config's order (the first is `inbound`). */
  inbounds?: string[];
  outbound?: string;
  ingress?: string;
  admin: string;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Writes `config` as DIR/<name>.yaml and runs `meshward sidecar --config` on it; resolves once it logs "sidecar ready". */
export async function runSidecar(dir: string, name: string, config: object, env: NodeJS.ProcessEnv = {}, options: { maxOpenFiles?: number } = {}): Promise<RunningSidecar> {
  const configFile = join(dir, `${name}.yaml`);
  // The warm-up (a few thousand requests through throwaway listeners) is for real starts: a suite that starts hundreds
  // of sidecars on two cores leaves it out unless a test asks for it (sidecar-warm-up.test.ts does).
  writeFileSync(configFile, stringify({ warmUp: { requests: 0 }, ...config }));
  const { child, output, match } = await startCli(['sidecar', '--config', configFile], /^.*"msg":"sidecar ready".*$/m, { env, ...options });
  const ready = JSON.parse(match[0]) as { inbound?: string; inbounds?: string[]; outbound?: string; ingress?: string; admin: string };
  return {
    child,
    configFile,
    ...(ready.inbound ? { inbound: ready.inbound } : {}),
    ...(ready.inbounds ? { inbounds: ready.inbounds } : {}),
    ...(ready.outbound ? { outbound: ready.outbound } : {}),
    ...(ready.ingress ? { ingress: ready.ingress } : {}),
    admin: ready.admin,
    output,
    stop: (signal) => stopBounded(child, configFile, signal),
  };
}

/**
 * Resolves once the sidecar's output contains `text`. A log line is written asynchronously and crosses a pipe, so
 * it can arrive after the answer to the request that caused it: wait for it instead of reading the output at once.
 */
export function outputContaining(sidecar: Pick<RunningSidecar, 'child' | 'output'>, text: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!sidecar.output().includes(text)) return false;
      done();
      resolve(sidecar.output());
      return true;
    };
    // The output buffer is appended by startCli's own listeners, which run first: by the time ours run it holds the chunk.
    const streams = [sidecar.child.stdout, sidecar.child.stderr].filter((s) => s !== null);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the sidecar did not log "${text}" within ${timeoutMs} ms; it logged:\n${sidecar.output()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      for (const stream of streams) stream.off('data', check);
    };
    if (check()) return;
    for (const stream of streams) stream.on('data', check);
  });
}

/**
 * Stops a sidecar for clean-up. A drain is bounded by the sidecar's own drainTimeout, so one that is still running
 * after STOP_BOUND_MS is a shutdown bug: it is killed so the suite can go on, and said loudly (tests that are about
 * shutdown assert the exit themselves, with stopChild).
 */
const STOP_BOUND_MS = 20_000;
async function stopBounded(child: ChildProcess, configFile: string, signal?: NodeJS.Signals): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<'killed'>((resolve) => {
    timer = setTimeout(() => resolve('killed'), STOP_BOUND_MS);
  });
  const outcome = await Promise.race([stopChild(child, signal), killed]);
  clearTimeout(timer);
  if (outcome !== 'killed') return outcome;
  console.warn(`meshward sidecar --config ${configFile} did not stop within ${STOP_BOUND_MS} ms of ${signal ?? 'SIGTERM'}: killed`);
  return stopChild(child, 'SIGKILL');
}

/** The usual pair: "orders" (inbound → app, with `policy`) and "web" (outbound route `orders` → orders' inbound). */
export async function runPair(
  mesh: Mesh,
  options: { app: string; policy?: string; ordersExtra?: object; webExtra?: object; inboundExtra?: object; env?: NodeJS.ProcessEnv },
): Promise<{ orders: RunningSidecar; web: RunningSidecar }> {
  const ordersSvid = await mesh.issue('orders', ORDERS_ID);
  const webSvid = await mesh.issue('web', WEB_ID);
  const policyFile = join(mesh.dir, 'policy.yaml');
  writeFileSync(policyFile, options.policy ?? ALLOW_WEB_GET_ORDERS);
  const orders = await runSidecar(mesh.dir, 'orders', {
    trustDomain: TD,
    identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: options.app, policy: policyFile, ...options.inboundExtra },
    admin: { listen: '127.0.0.1:0' },
    ...options.ordersExtra,
  }, options.env);
  const web = await runSidecar(mesh.dir, 'web', {
    trustDomain: TD,
    identity: { files: { cert: webSvid.cert, key: webSvid.key, bundle: mesh.bundle } },
    outbound: { listen: '127.0.0.1:0', routes: [{ host: 'orders', address: orders.inbound, spiffeId: ORDERS_ID }] },
    admin: { listen: '127.0.0.1:0' },
    ...options.webExtra,
  }, options.env);
  return { orders, web };
}

export function readJsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP/1.1 request with node:http (fetch may not set Host, which outbound routing reads). */
export function httpRequest(
  address: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<HttpAnswer> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A plain HTTP app on a free loopback port, and its http:// URL for a sidecar's inbound `app`. */
export async function startHttpApp(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

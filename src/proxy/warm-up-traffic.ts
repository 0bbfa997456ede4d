import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

// The traffic of a sidecar's warm-up (warm-up.ts): a throwaway app on loopback, and a closed-loop client that sends
// requests through a listener to it. What runs is the same code a real request runs, so V8 has compiled and
// optimised it, and start-up's garbage is collected, before /readyz says ready.

export interface WarmUpApp {
  readonly address: string;
  close(): Promise<void>;
}

/** Answers every request with a small body once it has read the request's. */
export async function startWarmUpApp(): Promise<WarmUpApp> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface WarmUpLoad {
  /** Requests in all (stops earlier at the deadline). */
  requests: number;
  /** Keep-alive connections, each sending its next request when the last one is answered. */
  connections: number;
  deadlineMs: number;
}

export interface WarmUpResult {
  sent: number;
  /** Answers that were not 2xx, and requests that failed. */
  failed: number;
  ms: number;
}

/** Sends GETs and small POSTs to `target` (HOST:PORT) with `Host: host`, closed loop, until done or the deadline. */
export async function sendWarmUpRequests(target: string, host: string, load: WarmUpLoad): Promise<WarmUpResult> {
  const [hostname, port] = splitHostPort(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: load.connections });
  const started = performance.now();
  const deadline = started + load.deadlineMs;
  let next = 0;
  let failed = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const post = i % 4 === 3;
      const req = http.request({ agent, hostname, port, method: post ? 'POST' : 'GET', path: `/warm-up/${i % 8}?n=${i}`, headers: { host, ...(post ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        if (res.statusCode === undefined || res.statusCode >= 300) failed++;
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(post ? '{"warm":true}' : undefined);
    });
  const loop = async () => {
    while (next < load.requests && performance.now() < deadline) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: load.connections }, loop));
  } finally {
    agent.destroy();
  }
  return { sent: next, failed, ms: performance.now() - started };
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), Number(address.slice(at + 1))];
}

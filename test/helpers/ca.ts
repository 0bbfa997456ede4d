import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CaClient } from '../../src/ca/client.js';
import { runCli, startCli, stopChild } from './cli.js';

export const TD = 'example.org';

export type CaAuditRecord = Record<string, unknown> & { method: string; decision: string };

/** The records of a CA audit log (DIR/audit.log), in order. */
export function auditRecords(file: string): CaAuditRecord[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as CaAuditRecord);
}

/** `meshward ca init` into DIR/ca through the real CLI. */
export async function initCaDir(dir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const caDir = join(dir, 'ca');
  const r = await runCli(['ca', 'init', '--trust-domain', TD, '--dir', caDir, ...extra], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return caDir;
}

export interface ServingCa {
  child: ChildProcess;
  address: string;
  output: () => string;
  client: (identity?: { certChainPem: string; keyPem: string }) => CaClient;
  stop: () => Promise<number | null>;
}

/** `meshward ca serve` as a child process on an ephemeral port. */
export async function serveCa(caDir: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<ServingCa> {
  const { child, output, match } = await startCli(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', ...extraArgs], /"address":"(127\.0\.0\.1:\d+)"[^\n]*"msg":"CA listening"/, { env });
  const address = match[1]!;
  const clients: CaClient[] = [];
  return {
    child,
    address,
    output,
    client: (identity) => {
      const c = new CaClient({ address, trustDomain: TD, bundlePem: readFileSync(join(caDir, 'bundle.pem'), 'utf8'), ...(identity ? { identity } : {}) });
      clients.push(c);
      return c;
    },
    stop: async () => {
      for (const c of clients) c.close();
      return stopChild(child);
    },
  };
}

export async function token(caDir: string, spiffeId: string, ttl = '10m'): Promise<string> {
  const r = await runCli(['ca', 'token', '--dir', caDir, '--spiffe-id', spiffeId, '--ttl', ttl]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** Follows WatchBundle until a bundle with `roots` roots arrives; resolves with the root count of each bundle seen. */
export function bundleWithRoots(client: CaClient, roots: number): Promise<number[]> {
  return new Promise((resolve) => {
    const seen: number[] = [];
    const stop = client.watchBundle((b) => {
      seen.push(b.x509Authorities.length);
      if (b.x509Authorities.length === roots) {
        stop();
        resolve(seen);
      }
    });
  });
}

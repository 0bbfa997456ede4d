import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Authority, initCa, mintJoinToken, startCaServer } from '../ca/index.js';
import { loadSidecarConfig } from '../config/index.js';
import { startSidecar, type Sidecar } from '../proxy/index.js';
import type { ComponentLogs } from './component-logs.js';
import { startOrdersApp } from './orders-app.js';
import type { Resources } from './resources.js';

// The demo's mesh, made of the real components, in this process: `ca init` and `ca serve` (the same functions the
// CLI calls), join tokens minted as `ca token` mints them, and two sidecars started from YAML files in the format
// of `meshward sidecar --config`, loaded by the same loader. In-process rather than child processes because every
// listener binds port 0 and hands back its address (no port guessing, no log scraping), start-up is fast, and
// nothing outlives the demo: one process to stop, clean up, or kill.

export const TRUST_DOMAIN = 'demo.meshward.local';
export const WEB_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/web`;
export const ORDERS_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/orders`;
/** The policy's one rule. */
export const ALLOW_RULE = 'web-reads-orders';
// Short-lived, so that a renewal happens while the demo watches: the sidecar renews at half the lifetime (counted
// from issuance) ±10%, so 6 s after issuance, ±0.6 s.
export const SVID_TTL = '12s';

export const POLICY = `# written by meshward demo: web may GET one order, and nothing else
defaultAction: deny
rules:
  - name: ${ALLOW_RULE}
    action: allow
    from:
      principals: ["${WEB_ID}"]
    to:
      methods: ["GET"]
      paths: ["/api/orders/*"]
`;

export interface MeshContext {
  dir: string;
  resources: Resources;
  logs: ComponentLogs;
}

export interface RunningCa {
  dir: string;
  /** The CA itself, for SVIDs the demo issues as an operator would (`meshward ca issue`). */
  authority: Authority;
  bundleFile: string;
  address: string;
  tokenSecret: Uint8Array;
}

export interface RunningOrders {
  app: string;
  inbound: string;
  admin: string;
  configFile: string;
  policyFile: string;
  auditFile: string;
}

export interface RunningWeb {
  outbound: string;
  /** The edge: web's ingress listener, for clients outside the mesh. */
  ingress: string;
  /** unix:PATH of the SPIFFE Workload API web's sidecar serves web's SVID on. */
  workloadApi: string;
  admin: string;
  configFile: string;
}

/** `meshward ca init`: a root for the demo's trust domain, in DIR/ca. */
export async function createCa(ctx: MeshContext): Promise<Omit<RunningCa, 'address' | 'authority'>> {
  const dir = join(ctx.dir, 'ca');
  const material = await initCa({ dir, trustDomain: TRUST_DOMAIN, ttlDays: 1 });
  return { dir, bundleFile: join(dir, 'bundle.pem'), tokenSecret: material.tokenSecret };
}

/** `meshward ca serve` on a free loopback port. */
export async function serveCa(ctx: MeshContext, ca: Omit<RunningCa, 'address' | 'authority'>): Promise<RunningCa> {
  const logger = ctx.logs.logger('ca');
  const authority = await Authority.open(ca.dir, { logger });
  ctx.resources.add('CA', () => authority.close());
  const server = await startCaServer({ authority, dir: ca.dir, host: '127.0.0.1', port: 0, logger });
  ctx.resources.add('CA server', () => server.close());
  return { ...ca, authority, address: server.address };
}

/** The orders app, and its sidecar: inbound mTLS with the policy and the audit log, an SVID bought with a join token. */
export async function startOrders(ctx: MeshContext, ca: RunningCa): Promise<RunningOrders> {
  const app = await startOrdersApp();
  ctx.resources.add('orders app', () => app.close());
  const policyFile = join(ctx.dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
  const configFile = await writeSidecarConfig(ctx, 'orders', {
    trustDomain: TRUST_DOMAIN,
    identity: await caIdentity(ctx, ca, 'orders', ORDERS_ID),
    inbound: { listen: '127.0.0.1:0', app: app.url, policy: 'policy.yaml' },
    admin: { listen: '127.0.0.1:0' },
    audit: { path: 'audit.jsonl' },
    drainTimeout: '1s',
  });
  const sidecar = await runSidecar(ctx, 'orders', configFile);
  return { app: app.url, inbound: sidecar.addresses.inbound!, admin: sidecar.addresses.admin, configFile, policyFile, auditFile: join(ctx.dir, 'audit.jsonl') };
}

/**
 * web's sidecar: an outbound listener for web's app, with one route, to orders, whose server must prove ORDERS_ID;
 * web's SVID on the SPIFFE Workload API, for a SPIFFE-aware program of web's that does its own mTLS; and the edge,
 * an ingress listener (`ingress`, edge.ts) whose clients outside the mesh reach orders through that route.
 */
export async function startWeb(ctx: MeshContext, ca: RunningCa, ordersInbound: string, ingress: object): Promise<RunningWeb> {
  const configFile = await writeSidecarConfig(ctx, 'web', {
    trustDomain: TRUST_DOMAIN,
    identity: await caIdentity(ctx, ca, 'web', WEB_ID),
    outbound: { listen: '127.0.0.1:0', routes: [{ host: 'orders', address: ordersInbound, spiffeId: ORDERS_ID }] },
    ingress,
    workloadApi: { listen: 'unix:web-workload.sock' },
    admin: { listen: '127.0.0.1:0' },
    drainTimeout: '1s',
  });
  const sidecar = await runSidecar(ctx, 'web', configFile);
  return { outbound: sidecar.addresses.outbound!, ingress: sidecar.addresses.ingress!, workloadApi: sidecar.addresses.workloadApi!, admin: sidecar.addresses.admin, configFile };
}

/** `identity.ca` with a one-time join token (as `meshward ca token` mints it) in a 0600 file next to the config. */
async function caIdentity(ctx: MeshContext, ca: RunningCa, name: string, spiffeId: string) {
  const tokenFile = join(ctx.dir, `${name}.token`);
  await writeFile(tokenFile, `${await mintJoinToken(ca.tokenSecret, { trustDomain: TRUST_DOMAIN, spiffeId, ttlSeconds: 600 })}\n`, { mode: 0o600 });
  return { ca: { address: ca.address, bundle: 'ca/bundle.pem', spiffeId, token: `file:${name}.token`, ttl: SVID_TTL } };
}

async function writeSidecarConfig(ctx: MeshContext, name: string, config: object): Promise<string> {
  const file = join(ctx.dir, `${name}.yaml`);
  await writeFile(file, `# written by meshward demo: a config for \`meshward sidecar --config ${name}.yaml\`\n${stringify(config)}`);
  return file;
}

async function runSidecar(ctx: MeshContext, name: string, configFile: string): Promise<Sidecar> {
  const sidecar = await startSidecar(loadSidecarConfig(configFile), ctx.logs.logger(`sidecar-${name}`));
  ctx.resources.add(`${name} sidecar`, () => sidecar.close());
  return sidecar;
}

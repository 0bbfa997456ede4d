// The filter chain of a real sidecar (`meshward sidecar`, child processes): what every inbound chain starts with,
// whatever its config says. Clients hold a real SVID of the mesh and send what an attacker would.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { TD } from '../helpers/ca.js';
import { connectH2, h2Request, identityOf, type MtlsIdentity } from '../helpers/h2-client.js';
import { makeMesh, ORDERS_ID, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const ADMIN_ID = `spiffe://${TD}/ns/default/sa/admin`;

interface Answer {
  status: number;
  body: string;
}

let dir: { dir: string; cleanup: () => void };
let mesh: Mesh;
let app: http.Server;
let appAddress: string;
let web: MtlsIdentity;
const sidecars: RunningSidecar[] = [];

beforeAll(async () => {
  dir = tempDir();
  mesh = await makeMesh(dir.dir);
  await mesh.issue('orders', ORDERS_ID);
  await mesh.issue('web', WEB_ID);
  web = identityOf(dir.dir, 'web', mesh.bundle);
  app = http.createServer((req, res) => res.end(`app saw ${req.method} ${req.url}`));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  for (const sidecar of sidecars) await sidecar.stop();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  dir?.cleanup();
});

/** orders's sidecar: inbound to the app with this policy and these inbound settings. */
async function orders(name: string, policy: string, inbound: object = {}): Promise<RunningSidecar> {
  const policyFile = join(dir.dir, `${name}.policy.yaml`);
  writeFileSync(policyFile, policy);
  const sidecar = await runSidecar(dir.dir, name, {
    trustDomain: TD,
    identity: { files: { cert: join(dir.dir, 'orders.pem'), key: join(dir.dir, 'orders.key'), bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: `http://${appAddress}`, policy: policyFile, ...inbound },
    admin: { listen: '127.0.0.1:0' },
  });
  sidecars.push(sidecar);
  return sidecar;
}

/** A request to an inbound listener with web's SVID, over HTTP/1.1 or HTTP/2. */
async function call(address: string, version: 'HTTP/1.1' | 'HTTP/2', path: string, headers: Record<string, string>): Promise<Answer> {
  if (version === 'HTTP/2') {
    const session = connectH2(address, web);
    const answer = await h2Request(session, { ':path': path, ':authority': 'orders', ...headers });
    session.close();
    return answer;
  }
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: Number(port), path, headers: { host: 'orders', ...headers }, ...web, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('identity headers a client sends', () => {
  // A policy that trusts the identity header meshward sets, as a policy author might: the header must then be
  // meshward's, never one the caller wrote, in every spelling a server would take for it.
  const trusting = (header: string) => `
defaultAction: deny
rules:
  - name: admin-by-header
    action: allow
    to: { paths: ["/admin/**"] }
    when: [{ key: "request.headers[${header}]", values: ["${ADMIN_ID}"] }]
`;

  it.each([
    ['x-meshward-principal', 'drop'],
    ['x-forwarded-client-cert', 'drop'],
    ['x_meshward_principal', 'allow'],
    ['x_forwarded_client_cert', 'allow'],
  ] as const)('are not seen by any filter: a forged %s decides nothing (headersWithUnderscores: %s)', async (header, underscores) => {
    const sidecar = await orders(`trusting-${header}`, trusting(header), { headersWithUnderscores: underscores });
    for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
      const answer = await call(sidecar.inbound!, version, '/admin/wipe', { [header]: ADMIN_ID });
      expect(answer.status, `${version} ${header}`).toBe(403);
      expect(answer.body).not.toContain('app saw');
    }
  });
});

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch, type RequestInit, type Response } from 'undici';
import { TD } from './ca.js';
import { OpensslPki } from './openssl-pki.js';
import { ORDERS_ID, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from './sidecar.js';

// An edge for the tests, all real: web's `meshward sidecar` with an ingress listener whose routes go over mTLS to
// orders's `meshward sidecar`, in front of an app the test runs. Clients outside the mesh hold no SVID: they trust a
// "public" CA made with openssl (as an ACME CA would be), whose certificate for localhost the ingress offers.

/** orders's policy: web (the edge, the only caller) may do anything; the filters at the edge are what is under test. */
export const ALLOW_WEB = `
defaultAction: deny
rules:
  - name: edge
    action: allow
    from: { principals: ["${WEB_ID}"] }
`;

export interface PublicCertificate {
  /** The public CA's root: what clients trust. */
  root: string;
  cert: string;
  key: string;
}

/** A server certificate for localhost, 127.0.0.1 and ::1 from a CA made with openssl (DIR/<name>.pem, .key; the root once). */
export function publicCertificate(dir: string, name = 'edge'): PublicCertificate {
  const pki = new OpensslPki(dir);
  const root = existsSync(join(dir, 'public-ca.pem')) ? { cert: join(dir, 'public-ca.pem'), key: join(dir, 'public-ca.key') } : pki.root('public-ca');
  const key = pki.key(name);
  const cert = pki.cert(name, root, key, ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1']);
  return { root: root.cert, cert, key };
}

export interface Edge {
  web: RunningSidecar;
  orders: RunningSidecar;
  /** https://localhost:PORT: the ingress listener. */
  url: string;
  /** Where it listens, as it logged it: 127.0.0.1:PORT, [::]:PORT. */
  address: string;
  port: number;
  certificate: PublicCertificate;
  /** What fetch() needs to trust the edge (for another URL of it: https://[::1]:PORT). */
  dispatcher: Agent;
  /** fetch() as a client outside the mesh: it trusts the public CA, and holds no client certificate. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export interface EdgeOptions {
  /** orders's app: http://HOST:PORT. */
  app: string;
  /** `ingress:` without listen and tls (routes, filters, limits, ...). */
  ingress: object;
  /** Merged into web's config (an audit log). */
  webExtra?: object;
  /** web's environment (MESHWARD_LOG_LEVEL). */
  webEnv?: NodeJS.ProcessEnv;
  /** web's outbound `filters:` list. */
  outboundFilters?: object[];
  /** More outbound routes for web, given orders's inbound address. */
  outboundRoutes?: (ordersInbound: string) => object[];
  /** Merged into orders's `inbound:` (headersWithUnderscores, ...). */
  ordersInbound?: object;
  /** orders's policy (default: ALLOW_WEB). */
  policy?: string;
  /** Config file names: DIR/<name>-orders.yaml, DIR/<name>-web.yaml. */
  name?: string;
}

/** Starts orders's sidecar, then web's with the ingress; the SVIDs and the public certificate are made when missing. */
export async function startEdge(mesh: Mesh, options: EdgeOptions): Promise<Edge> {
  const name = options.name ?? 'edge';
  const { dir } = mesh;
  for (const [svid, id] of [['orders', ORDERS_ID], ['web', WEB_ID]] as const) if (!existsSync(join(dir, `${svid}.pem`))) await mesh.issue(svid, id);
  const certificate = existsSync(join(dir, 'edge.pem')) ? { root: join(dir, 'public-ca.pem'), cert: join(dir, 'edge.pem'), key: join(dir, 'edge.key') } : publicCertificate(dir);
  const policyFile = join(dir, `${name}-policy.yaml`);
  writeFileSync(policyFile, options.policy ?? ALLOW_WEB);
  const orders = await runSidecar(dir, `${name}-orders`, {
    trustDomain: TD,
    identity: { files: { cert: join(dir, 'orders.pem'), key: join(dir, 'orders.key'), bundle: mesh.bundle } },
    inbound: { listen: '127.0.0.1:0', app: options.app, policy: policyFile, ...options.ordersInbound },
    admin: { listen: '127.0.0.1:0' },
  });
  let web: RunningSidecar;
  try {
    web = await runSidecar(dir, `${name}-web`, {
      trustDomain: TD,
      identity: { files: { cert: join(dir, 'web.pem'), key: join(dir, 'web.key'), bundle: mesh.bundle } },
      outbound: {
        listen: '127.0.0.1:0',
        routes: [{ host: 'orders', address: orders.inbound, spiffeId: ORDERS_ID }, ...(options.outboundRoutes?.(orders.inbound!) ?? [])],
        ...(options.outboundFilters ? { filters: options.outboundFilters } : {}),
      },
      ingress: { listen: '127.0.0.1:0', tls: { cert: certificate.cert, key: certificate.key }, ...options.ingress },
      admin: { listen: '127.0.0.1:0' },
      ...options.webExtra,
    }, options.webEnv);
  } catch (err) {
    await orders.stop();
    throw err;
  }
  const address = web.ingress!;
  const port = address.slice(address.lastIndexOf(':') + 1);
  const url = `https://localhost:${port}`;
  const agent = new Agent({ connect: { ca: readFileSync(certificate.root) } });
  return {
    web,
    orders,
    url,
    address,
    port: Number(port),
    certificate,
    dispatcher: agent,
    fetch: (path, init = {}) => fetch(`${url}${path}`, { ...init, dispatcher: agent }),
    stop: async () => {
      await agent.close();
      await Promise.all([web.stop(), orders.stop()]);
    },
  };
}

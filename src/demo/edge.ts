import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, type Dispatcher } from 'undici';
import { makeCsr } from '../ca/index.js';
import { apiKeyHash, newApiKey, withApiKey } from '../filters/api-key-store.js';
import { TRUST_DOMAIN, WEB_ID, type MeshContext, type RunningCa } from './mesh.js';
import { ORDER_CARD as CARD } from './orders-app.js';
import type { Row } from './rows.js';

// The edge: web's sidecar also takes clients outside the mesh, on an ingress listener with ordinary TLS (no SVID is
// asked of them), and sends what its filters let through to orders over mTLS, as web. The filters are what an API
// gateway puts in front of an API: CORS for pages of the shop's origin, an API key, the API's OpenAPI document, and
// masking of the card number orders answers with.

export const SHOP_ORIGIN = 'https://shop.example';
const KEY_NAME = 'demo-client';

const ORDERS_API = `# written by meshward demo: what clients outside the mesh may send to orders
openapi: 3.0.3
info: { title: Orders, version: '1' }
paths:
  /api/orders:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [item, quantity]
              properties:
                item: { type: string, maxLength: 40 }
                quantity: { type: integer, minimum: 1 }
      responses: { '201': { description: the new order } }
  /api/orders/{id}:
    get:
      parameters: [{ name: id, in: path, required: true, schema: { type: string, pattern: '^[0-9]+$' } }]
      responses: { '200': { description: one order } }
`;

export interface EdgeConfig {
  /** web.yaml's `ingress:`. */
  ingress: object;
  /** The key the demo's client holds: only its hash is in the keys file. */
  apiKey: string;
}

/**
 * The edge's files beside web.yaml: its certificate for localhost (from the demo's CA here, as `meshward ca issue
 * --dns localhost` makes one; from any CA in production), the API keys file as `meshward apikey create` writes it, and
 * the OpenAPI document.
 */
export async function prepareEdge(ctx: MeshContext, ca: RunningCa): Promise<EdgeConfig> {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const certificate = await ca.authority.sign({ csr: await makeCsr(key), spiffeId: `spiffe://${TRUST_DOMAIN}/ns/default/sa/edge`, ttlSeconds: 3600, dnsNames: ['localhost'] }, { method: 'operator' });
  await writeFile(join(ctx.dir, 'edge.key'), key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  await writeFile(join(ctx.dir, 'edge.pem'), certificate.chainPem);
  const apiKey = newApiKey();
  const keysFile = join(ctx.dir, 'api-keys.yaml');
  await writeFile(keysFile, withApiKey('', keysFile, KEY_NAME, apiKeyHash(apiKey)), { mode: 0o600 });
  await writeFile(join(ctx.dir, 'orders-api.yaml'), ORDERS_API);
  return {
    apiKey,
    ingress: {
      listen: '127.0.0.1:0',
      tls: { cert: 'edge.pem', key: 'edge.key' },
      routes: [{ prefix: '/api/orders', methods: ['GET', 'POST'], to: 'orders' }],
      filters: [
        { cors: { allowOrigins: [SHOP_ORIGIN], allowMethods: ['GET', 'POST'], allowHeaders: ['content-type', 'x-api-key'] } },
        { apiKey: { keysFile: 'api-keys.yaml' } },
        { validate: { openapi: 'orders-api.yaml' } },
        { mask: { fields: [{ name: 'card', mode: 'partial' }] } },
      ],
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A client outside the mesh: TLS to the edge, trusting the CA that made its certificate, no certificate of its own. */
export class EdgeClient {
  private readonly client: Client;

  constructor(
    address: string,
    bundlePem: string,
    readonly apiKey: string,
  ) {
    this.client = new Client(`https://localhost:${address.slice(address.lastIndexOf(':') + 1)}`, { connect: { ca: bundlePem } });
  }

  static async open(address: string, ca: RunningCa, apiKey: string): Promise<EdgeClient> {
    return new EdgeClient(address, await readFile(ca.bundleFile, 'utf8'), apiKey);
  }

  async send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    const res = await this.client.request({ method: method as Dispatcher.HttpMethod, path, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.body.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // A preflight's answer has no body.
    }
    return { status: res.statusCode, headers: res.headers, body: parsed };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** What a browser sends before a page of another origin may call with an API key: answered by the edge itself. */
export async function corsPreflight(edge: EdgeClient): Promise<Row> {
  const res = await edge.send('OPTIONS', '/api/orders/5', { origin: SHOP_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' });
  const allowed = res.headers['access-control-allow-origin'];
  const ok = res.status === 204 && allowed === SHOP_ORIGIN;
  return { request: 'OPTIONS /api/orders/5, CORS preflight', as: `page of ${SHOP_ORIGIN}`, result: `${res.status}${ok ? ', origin allowed' : ''}`, why: 'answered at the edge', ok, expected: `204 with access-control-allow-origin: ${SHOP_ORIGIN}` };
}

/** A call with the API key: checked at the edge, then sent to orders over mTLS, where orders's policy sees web. */
export async function apiKeyCall(edge: EdgeClient): Promise<Row> {
  const res = await edge.send('GET', '/api/orders/5', { 'x-api-key': edge.apiKey });
  const ok = res.status === 200 && res.body.order === '5' && res.body.caller === WEB_ID;
  const caller = typeof res.body.caller === 'string' ? res.body.caller.replace(`spiffe://${TRUST_DOMAIN}`, 'spiffe://…') : '(none)';
  return { request: 'GET /api/orders/5, API key, TLS', as: `apikey:${KEY_NAME}`, result: `${res.status} ${res.status === 200 ? 'allowed' : 'refused'}`, why: `then mTLS: orders saw ${caller}`, ok, expected: `200, orders seeing ${WEB_ID}` };
}

/** A body with a field the OpenAPI document does not allow (an injected field): refused at the edge. */
export async function schemaRejection(edge: EdgeClient): Promise<Row> {
  const res = await edge.send('POST', '/api/orders', { 'x-api-key': edge.apiKey, 'content-type': 'application/json' }, '{"item":"widget","quantity":1,"isAdmin":true}');
  const [first] = (res.body.errors as Array<{ pointer?: string; message?: string }> | undefined) ?? [];
  const ok = res.status === 400 && first?.pointer === '/isAdmin';
  return { request: 'POST /api/orders {…, "isAdmin": true}', as: `apikey:${KEY_NAME}`, result: `${res.status}${ok ? ' rejected' : ''}`, why: first ? `${first.pointer}: not in the schema` : JSON.stringify(res.body), ok, expected: '400 naming /isAdmin' };
}

/** orders answers with a card number; the client outside the mesh gets its last four digits only. */
export async function maskedField(edge: EdgeClient): Promise<Row> {
  const res = await edge.send('GET', '/api/orders/6', { 'x-api-key': edge.apiKey });
  const card = res.body.card;
  const ok = res.status === 200 && card === `***${CARD.slice(-4)}`;
  return { request: 'GET /api/orders/6, card number', as: `apikey:${KEY_NAME}`, result: `${res.status}, card ${String(card)}`, why: 'masked at the edge', ok, expected: `the card as ***${CARD.slice(-4)}` };
}

import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { Client, type Dispatcher, type Pool } from 'undici';
import { fetchX509Svid } from '../identity-api/workload-api-client.js';
import { ALLOW_RULE, ORDERS_ID, TRUST_DOMAIN, WEB_ID, type RunningCa, type RunningOrders, type RunningWeb } from './mesh.js';
import type { Row } from './rows.js';

// The demo's requests, each judged against what the mesh promises. Requests "as web" are what web's app does:
// plain HTTP to its own sidecar's outbound listener with `Host: orders`; the sidecars do the mTLS.

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function send(web: Pool, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await web.request({ path, method: (options.method ?? 'GET') as Dispatcher.HttpMethod, headers: { host: 'orders', ...options.headers } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

function json(body: string): Record<string, unknown> {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The deciding rule of an allowed request, as orders' sidecar wrote it to the audit log (appends are group-committed). */
async function auditedRule(auditFile: string, requestId: string): Promise<string | undefined> {
  for (let i = 0; i < 40; i++) {
    const text = await readFile(auditFile, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.includes(requestId)) continue;
      const record = json(line) as { requestId?: string; decision?: { rule?: string } };
      if (record.requestId === requestId) return record.decision?.rule;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

export async function allowedRead(web: Pool, orders: RunningOrders): Promise<Row> {
  const requestId = `demo-allowed-${Date.now()}`;
  const res = await send(web, '/api/orders/42', { headers: { 'x-request-id': requestId } });
  const rule = res.status === 200 ? await auditedRule(orders.auditFile, requestId) : undefined;
  const ok = res.status === 200 && json(res.body).order === '42' && rule === ALLOW_RULE;
  return { request: 'GET /api/orders/42', as: 'web', result: `${res.status} ${res.status === 200 ? 'allowed' : 'refused'}`, why: rule ? `rule ${rule}` : res.body, ok, expected: `200, allowed by rule ${ALLOW_RULE}` };
}

/**
 * A SPIFFE-aware program of web's: no sidecar in its path. It reads web's SVID from the Workload API of web's
 * sidecar (no certificate file anywhere) and calls orders' inbound listener itself, over mutual TLS, checking that
 * the server proves orders' SPIFFE ID; orders' sidecar authorizes it as web.
 */
export async function spiffeAwareCall(web: RunningWeb, orders: RunningOrders): Promise<Row> {
  const row = { request: 'GET /api/orders/9, SVID from Workload API', as: 'web, own mTLS', expected: `200, allowed by rule ${ALLOW_RULE}` };
  const svid = await fetchX509Svid(web.workloadApi);
  const client = new Client(`https://${orders.inbound}`, {
    connect: {
      cert: svid.certChainPem,
      key: svid.keyPem,
      ca: svid.bundlePem,
      // The server proves a SPIFFE ID, not a host name.
      checkServerIdentity: (_host, cert) => (cert.subjectaltname === `URI:${ORDERS_ID}` ? undefined : new Error(`the server is ${cert.subjectaltname}, not ${ORDERS_ID}`)),
    },
  });
  try {
    const requestId = `demo-workload-api-${Date.now()}`;
    const res = await client.request({ path: '/api/orders/9', method: 'GET', headers: { host: 'orders', 'x-request-id': requestId } });
    const body = await res.body.text();
    const rule = res.statusCode === 200 ? await auditedRule(orders.auditFile, requestId) : undefined;
    const ok = svid.spiffeId === WEB_ID && res.statusCode === 200 && json(body).order === '9' && rule === ALLOW_RULE;
    return { ...row, result: `${res.statusCode} ${res.statusCode === 200 ? 'allowed' : 'refused'}`, why: rule ? `rule ${rule}` : body, ok };
  } finally {
    await client.close();
  }
}

/** A request the policy does not allow: 403 naming the deciding rule (the default, as nothing allows it). */
export async function deniedRequest(web: Pool, method: string, path: string): Promise<Row> {
  const res = await send(web, path, { method });
  const rule = res.headers['x-meshward-denied-by'] ?? json(res.body).rule;
  const ok = res.status === 403 && rule === 'default';
  return { request: `${method} ${path}`, as: 'web', result: `${res.status} ${res.status === 403 ? 'denied' : 'not denied'}`, why: `rule ${String(rule)}`, ok, expected: '403, denied by rule default' };
}

/** Egress is denied unless routed: web's sidecar knows no host "payments". */
export async function unroutedHost(web: Pool): Promise<Row> {
  const res = await send(web, '/api/payments', { headers: { host: 'payments' } });
  const ok = res.status === 502 && json(res.body).error === 'no_route';
  return { request: 'GET /api/payments, Host: payments', as: 'web', result: `${res.status} ${ok ? 'no route' : ''}`.trim(), why: 'egress only to routed hosts', ok, expected: '502 no_route' };
}

/** A TLS client with no certificate, straight at orders' inbound listener: the handshake fails, no HTTP is answered. */
export async function noClientCertificate(ca: RunningCa, orders: RunningOrders): Promise<Row> {
  const [host, port] = [orders.inbound.slice(0, orders.inbound.lastIndexOf(':')), Number(orders.inbound.slice(orders.inbound.lastIndexOf(':') + 1))];
  const bundle = await readFile(ca.bundleFile, 'utf8');
  const outcome = await new Promise<{ answered: boolean; reason: string }>((resolve) => {
    // The server is verified by its chain; SVIDs name a SPIFFE ID, not a host, so there is no host name to check.
    const socket = tls.connect({ host, port, ca: bundle, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
    let data = '';
    const done = (answered: boolean, reason: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answered, reason });
    };
    const timer = setTimeout(() => done(data.startsWith('HTTP/'), 'timed out'), 5000);
    // In TLS 1.3 the server judges the client's (absent) certificate after the client's side of the handshake, so
    // the refusal arrives as an alert on the first read.
    socket.on('secureConnect', () => socket.write('GET /api/orders/42 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n'));
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (err: NodeJS.ErrnoException) => done(data.startsWith('HTTP/'), alertName(err)));
    socket.on('close', () => done(data.startsWith('HTTP/'), 'connection closed'));
  });
  const ok = !outcome.answered;
  return {
    request: 'GET /api/orders/42, no client cert',
    as: '(nobody)',
    result: ok ? 'refused at TLS handshake' : 'answered over HTTP',
    why: outcome.reason,
    ok,
    expected: 'refused at the TLS handshake',
  };
}

function alertName(err: NodeJS.ErrnoException): string {
  const alert = /ALERT_(\w+)$/.exec(err.code ?? '')?.[1];
  return alert ? `TLS alert: ${alert.toLowerCase().replaceAll('_', ' ')}` : err.code ?? err.message;
}

/** A forged x-forwarded-client-cert (and principal header) claiming another identity: removed; the app sees the real caller. */
export async function forgedClientCertHeader(web: Pool): Promise<Row> {
  const forged = WEB_ID.replace(/\/sa\/web$/, '/sa/admin');
  const res = await send(web, '/api/orders/7', {
    headers: { 'x-forwarded-client-cert': `By=${WEB_ID};URI=${forged}`, 'x-meshward-principal': forged },
  });
  const seen = json(res.body) as { xfcc?: string | null; caller?: string | null };
  const uri = /URI=([^;,]+)/.exec(seen.xfcc ?? '')?.[1];
  const ok = res.status === 200 && uri === WEB_ID && seen.caller === WEB_ID && !(seen.xfcc ?? '').includes(forged);
  return {
    request: 'GET /api/orders/7, forged XFCC sa/admin',
    as: 'web',
    result: `${res.status}, ${ok ? 'forged XFCC removed' : 'forged XFCC kept'}`,
    why: `app saw URI=${uri?.replace(`spiffe://${TRUST_DOMAIN}`, 'spiffe://…') ?? '(none)'}`,
    ok,
    expected: `the app sees URI=${WEB_ID} only`,
  };
}

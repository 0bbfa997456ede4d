// No credential reaches a log line, an audit record or a span, however a caller spells it: OAuth2 / OpenID
// parameters in the query, in a `;` parameter or in a path segment (any case, percent-encoded names), JWTs in a
// path segment and in `x-request-id`. Sent through a real sidecar pair (HTTP/1.1 and HTTP/2, allowed and denied,
// spans exported to a collector stand-in), a real `meshward authz` and a real `meshward ca serve`, all at debug
// level with audit logs; then every byte they wrote is searched.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCsr, mintJoinToken } from '../../src/ca/index.js';
import { authorizationClient, check, envoyCheckRequest } from '../conformance/envoy-client.js';
import { initCaDir, serveCa, TD } from '../helpers/ca.js';
import { startCli, stopChild, tempDir } from '../helpers/cli.js';
import { ecKey } from '../helpers/pki.js';
import { httpRequest, makeMesh, readJsonLines, runPair, WEB_ID, type RunningSidecar } from '../helpers/sidecar.js';

const b64 = (value: string) => Buffer.from(value).toString('base64url');
/** A JWT whose every part is distinct, so that any part of it showing up anywhere is caught. */
const jwt = (label: string) => `${b64('{"alg":"ES256","typ":"JWT"}')}.${b64(`{"sub":"${label}-subject"}`)}.${b64(`${label}-signature-bytes`)}`;
const JWT_IN_PATH = jwt('path');
const JWT_IN_ID = jwt('request-id');

/** Each OAuth2 / OpenID credential parameter with a value that must never be written anywhere. */
const SECRET_VALUES = {
  client_secret: 'cs-SEKRIT-1',
  code: 'authcode-SEKRIT-2',
  refresh_token: 'rt-SEKRIT-3',
  id_token: 'it-SEKRIT-4',
  access_token: 'at-SEKRIT-5',
  password: 'pw-SEKRIT-6',
  assertion: 'as-SEKRIT-7',
  client_assertion: 'ca-SEKRIT-8',
  code_verifier: 'cv-SEKRIT-9',
  device_code: 'dc-SEKRIT-10',
  api_key: 'ak-SEKRIT-11',
};
const query = Object.entries(SECRET_VALUES)
  .map(([name, value]) => `${name}=${value}`)
  .join('&');
/** The same names spelt otherwise: upper case, a percent-encoded name, a `;` parameter, a path segment. */
const RESPELT = {
  upper: 'up-SEKRIT-12',
  encoded: 'enc-SEKRIT-13',
  matrix: 'mx-SEKRIT-14',
  segment: 'seg-SEKRIT-15',
};
const NEEDLES = [
  ...Object.values(SECRET_VALUES),
  ...Object.values(RESPELT),
  ...JWT_IN_PATH.split('.'),
  ...JWT_IN_ID.split('.').slice(1),
];

function expectNoCredential(what: string, text: string): void {
  for (const needle of NEEDLES) expect(text, `${what} holds "${needle}"`).not.toContain(needle);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('credentials in requests through a sidecar pair', () => {
  const { dir, cleanup } = tempDir('meshward-redaction-sidecar-');
  const auditFile = join(dir, 'audit.jsonl');
  const exported: string[] = [];
  const collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      exported.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const app = http.createServer((_req, res) => res.end('ok'));
  let orders: RunningSidecar | undefined;
  let web: RunningSidecar | undefined;
  let outputs: string[];

  beforeAll(async () => {
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const env = {
      MESHWARD_LOG_LEVEL: 'debug',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    };
    const mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, env, ordersExtra: { audit: { path: auditFile } } }));
    const outbound = web.outbound!;
    const send = (path: string) => httpRequest(outbound, path, { headers: { host: 'orders', 'x-request-id': JWT_IN_ID } });
    expect((await send(`/api/orders/${JWT_IN_PATH}?${query}`)).status).toBe(200);
    expect((await send(`/api/orders/1;access_token=${RESPELT.matrix}?Client_Secret=${RESPELT.upper}`)).status).toBe(200);
    expect((await send(`/api/orders/client_secret=${RESPELT.segment}/x?client%5Fsecret=${RESPELT.encoded}`)).status).toBe(200);
    expect((await send(`/admin/${JWT_IN_PATH}?${query}`)).status).toBe(403);
    expect(await http2Status(outbound, `/api/orders/${JWT_IN_PATH}?${query}`)).toBe(200);
    // SIGTERM writes the audit log and exports the spans still buffered.
    expect(await web.stop()).toBe(0);
    expect(await orders.stop()).toBe(0);
    outputs = [web.output(), orders.output()];
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app.close();
    collector.close();
    cleanup();
  });

  it('logs every request at debug level without a credential in it', () => {
    for (const output of outputs) {
      expect(output).toContain('"msg":"request"');
      expectNoCredential('the log', output);
    }
    expect(outputs[1]).toContain('"msg":"request refused or failed"');
  });

  it('audits every decision with the path redacted and a request id of its own instead of the JWT', () => {
    const records = readJsonLines(auditFile);
    expect(records).toHaveLength(5);
    expectNoCredential('the audit log', readFileSync(auditFile, 'utf8'));
    expect(records[0]).toMatchObject({ path: '/api/orders/[redacted jwt]', decision: { outcome: 'allow' } });
    expect(records[1]).toMatchObject({ path: '/api/orders/1;access_token=[redacted]' });
    expect(records[2]).toMatchObject({ path: '/api/orders/client_secret=[redacted]' });
    expect(records[3]).toMatchObject({ path: '/admin/[redacted jwt]', decision: { outcome: 'deny' } });
    for (const record of records) expect(record.requestId).toMatch(UUID);
  });

  it('exports spans without a credential in them', () => {
    expect(exported.join('')).toContain('url.path');
    expectNoCredential('the exported spans', exported.join('\n'));
  });
});

describe('credentials in Checks to meshward authz', () => {
  const { dir, cleanup } = tempDir('meshward-redaction-authz-');
  const auditFile = join(dir, 'audit.log');
  let child: Awaited<ReturnType<typeof startCli>>['child'];
  let output: () => string;
  let client: Client;

  beforeAll(async () => {
    const policyFile = join(dir, 'policy.yaml');
    const policy = `rules: [{ name: web-reads-orders, action: allow, from: { principals: ["${WEB_ID}"] }, to: { paths: ["/api/orders/**"] } }]\n`;
    writeFileSync(policyFile, policy);
    const started = await startCli(['authz', '--policy', policyFile, '--listen', '127.0.0.1:0', '--audit', auditFile], /^.*"msg":"listening".*$/m, { env: { MESHWARD_LOG_LEVEL: 'debug' } });
    ({ child, output } = started);
    client = authorizationClient((JSON.parse(started.match[0]) as { address: string }).address);
  });

  afterAll(async () => {
    client?.close();
    if (child) await stopChild(child);
    cleanup();
  });

  it('neither logs nor audits a credential from the path, the query or x-request-id', async () => {
    const ask = (path: string, id: string) => check(client, envoyCheckRequest({ principal: WEB_ID, path, id, headers: { 'x-request-id': JWT_IN_ID } }));
    expect((await ask(`/api/orders/${JWT_IN_PATH}?${query}`, JWT_IN_ID)).status.code).toBe(0);
    expect((await ask(`/api/orders/1;access_token=${RESPELT.matrix}?Client_Secret=${RESPELT.upper}&client%5Fsecret=${RESPELT.encoded}`, 'envoy-1')).status.code).toBe(0);
    expect((await ask(`/admin/client_secret=${RESPELT.segment}?${query}`, 'envoy-2')).status.code).toBe(7);
    expect(await stopChild(child)).toBe(0);

    expect(output()).toContain('"msg":"allowed"');
    expect(output()).toContain('"msg":"denied"');
    expectNoCredential('the log', output());
    const records = readJsonLines(auditFile);
    expect(records).toHaveLength(3);
    expectNoCredential('the audit log', readFileSync(auditFile, 'utf8'));
    expect(records.map((r) => r.path)).toEqual(['/api/orders/[redacted jwt]', '/api/orders/1;access_token=[redacted]', '/admin/client_secret=[redacted]']);
    for (const record of records) expect(record.requestId).toMatch(UUID);
  });
});

describe('credentials in requests to meshward ca serve', () => {
  const { dir, cleanup } = tempDir('meshward-redaction-ca-');
  afterAll(cleanup);

  it('neither logs nor audits a JWT sent as x-request-id or inside the SPIFFE ID asked for', async () => {
    const caDir = await initCaDir(dir);
    const ca = await serveCa(caDir, { MESHWARD_LOG_LEVEL: 'debug' });
    try {
      const tokenKey = Buffer.from(readFileSync(join(caDir, 'token.key'), 'utf8').trim(), 'base64url');
      const joinToken = await mintJoinToken(tokenKey, { trustDomain: TD, spiffeId: WEB_ID, ttlSeconds: 600 });
      const issued = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken, metadata: { 'x-request-id': JWT_IN_ID } });
      expect(issued.spiffeId).toBe(WEB_ID);
      const other = await mintJoinToken(tokenKey, { trustDomain: TD, spiffeId: WEB_ID, ttlSeconds: 600 });
      const refused = ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: other, spiffeId: `spiffe://${TD}/ns/x/${JWT_IN_PATH}`, metadata: { 'x-request-id': JWT_IN_ID } });
      await expect(refused).rejects.toThrow();
    } finally {
      expect(await ca.stop()).toBe(0);
    }
    expectNoCredential('the log', ca.output());
    const auditFile = join(caDir, 'audit.log');
    await vi.waitFor(() => expect(readJsonLines(auditFile).filter((r) => r.method === 'token')).toHaveLength(2));
    expectNoCredential('the audit log', readFileSync(auditFile, 'utf8'));
    for (const record of readJsonLines(auditFile)) expect(record.requestId).toMatch(UUID);
  });
});

/** One request over HTTP/2 with prior knowledge, as a gRPC client of the outbound listener would send it. */
async function http2Status(address: string, path: string): Promise<number> {
  const session = connect(`http://${address}`);
  try {
    const stream = session.request({ ':method': 'GET', ':path': path, ':authority': 'orders', 'x-request-id': JWT_IN_ID });
    const status = await new Promise<number>((resolve, reject) => stream.once('response', (h) => resolve(Number(h[':status']))).once('error', reject));
    stream.resume();
    await new Promise((resolve) => stream.once('close', resolve));
    return status;
  } finally {
    session.close();
  }
}

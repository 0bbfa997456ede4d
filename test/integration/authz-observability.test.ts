// `meshward authz --admin --audit` as an operator sees it: a real child process, Checks from a client built with the
// official Envoy protos, /metrics and /readyz read with curl, the audit log checked by `meshward audit verify`.
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { frameMessage } from '../../src/grpc/grpc-framing.js';
import { loadCheckTypes } from '../../src/authz/ext-authz/protos.js';
import { runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { readJsonLines } from '../helpers/sidecar.js';
import { authorizationClient, check, checkWithRawBytes, envoyCheckRequest, type CheckResponse } from '../conformance/envoy-client.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const OTHER = 'spiffe://example.org/ns/default/sa/other';
const NOISY = 'spiffe://example.org/ns/default/sa/noisy';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const LISTENING = /^.*"msg":"listening".*$/m;

const POLICY = `
defaultAction: deny
jwt: { issuer: "https://issuer.example", audiences: ["orders"], jwksFile: jwks.json, required: false }
rules:
  - name: block-admin
    action: deny
    to: { paths: ["/admin/**"] }
  - name: web-reads-orders
    action: allow
    from: { principals: ["${WEB}"] }
    to: { methods: ["GET"], paths: ["/api/orders", "/api/orders/*"] }
  - name: public
    action: allow
    to: { paths: ["/public/**"] }
  - name: watch-public
    action: audit
    to: { paths: ["/public/**"] }
rateLimits:
  - name: slow-path
    match: { paths: ["/public/slow"] }
    requestsPerSecond: 0.001
    burst: 1
    per: global
`;

interface AuditRecord {
  type: string;
  requestId: string;
  traceId?: string;
  principal?: string;
  path?: string;
  decision: { outcome: string; rule: string };
  status: number;
  [field: string]: unknown;
}

async function curl(url: string): Promise<{ status: number; body: string }> {
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--max-time', '5', '-w', '\n%{http_code}', url]);
  const end = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(end + 1)), body: stdout.slice(0, end) };
}

/** One series' value in a Prometheus text exposition, e.g. `meshward_rate_limited_total{limit="x"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** For what a child process does in its own time (writes a file, reloads): polled, within a bound. */
const settle = { timeout: 10_000, interval: 25 };

/** The JSON lines of a child's log output (which also holds lines that are not JSON). */
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const deniedRequestId = (response: CheckResponse) => (JSON.parse(response.denied_response!.body!) as { requestId: string }).requestId;

describe('meshward authz: admin listener, metrics and audit log', () => {
  const { dir, cleanup } = tempDir('meshward-authz-observability-');
  const policyFile = join(dir, 'policy.yaml');
  const auditFile = join(dir, 'audit.log');
  let child: ChildProcess;
  let output: () => string;
  let address: string;
  let admin: string;
  let client: Client;
  /** Every Check sent, by the request id its audit record must carry. */
  const sent: string[] = [];
  const metrics = async () => (await curl(`http://${admin}/metrics`)).body;
  const auditRecords = () => (existsSync(auditFile) ? (readJsonLines(auditFile) as unknown as AuditRecord[]) : []);

  beforeAll(async () => {
    const { publicKey } = await generateKeyPair('ES256');
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
    writeFileSync(policyFile, POLICY);
    const started = await startCli(['authz', '--policy', policyFile, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit', auditFile], LISTENING);
    ({ child, output } = started);
    ({ address, admin } = JSON.parse(started.match[0]) as { address: string; admin: string });
    client = authorizationClient(address);
  });
  afterAll(async () => {
    client?.close();
    if (child) await stopChild(child);
    cleanup();
  });

  it('logs the bound admin address and serves /healthz, /readyz and the list of its paths', async () => {
    expect(admin).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(admin).not.toBe('127.0.0.1:0');
    expect(await curl(`http://${admin}/healthz`)).toEqual({ status: 200, body: expect.stringContaining('"ok"') });
    expect(await curl(`http://${admin}/readyz`)).toEqual({ status: 200, body: expect.stringContaining('"ready"') });
    const other = await curl(`http://${admin}/nope`);
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body)).toMatchObject({ paths: ['/healthz', '/readyz', '/metrics'] });
  });

  it('counts every Check by decision and the gRPC status it answered, by rule and by limit', async () => {
    const traceparent = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
    const code = async (request: unknown) => (await check(client, request)).status.code;
    // request.http.id differs from x-request-id on purpose: the header wins.
    expect(await code(envoyCheckRequest({ principal: WEB, path: '/api/orders/1?token=s3cret', id: 'envoy-id', headers: { 'x-request-id': 'req-allow', traceparent } }))).toBe(0);
    expect(await code(envoyCheckRequest({ principal: WEB, path: '/admin/users', id: 'req-deny', headers: { traceparent } }))).toBe(7);
    expect(await code(envoyCheckRequest({ principal: OTHER, id: 'req-default', headers: { traceparent: '00-not-a-trace-01' } }))).toBe(7);
    expect(await code(envoyCheckRequest({ principal: WEB, id: 'req-unauthenticated', headers: { authorization: 'Bearer not.a.token' } }))).toBe(16);
    expect(await code(envoyCheckRequest({ principal: WEB, path: '/api/orders%2F..%2Fadmin', id: 'req-bad-path' }))).toBe(3);
    expect(await code(envoyCheckRequest({ path: '/public/slow', id: 'req-slow-1' }))).toBe(0);
    expect(await code(envoyCheckRequest({ path: '/public/slow', id: 'req-slow-2' }))).toBe(8);
    const noAttributes = await check(client, {});
    const undecodable = await checkWithRawBytes(client, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect([noAttributes.status.code, undecodable.status.code]).toEqual([3, 3]);
    sent.push('req-allow', 'req-deny', 'req-default', 'req-unauthenticated', 'req-bad-path', 'req-slow-1', 'req-slow-2', deniedRequestId(noAttributes), deniedRequestId(undecodable));

    const text = await metrics();
    const requests = (decision: string, status: number) => sample(text, `meshward_requests_total{direction="check",decision="${decision}",status="${status}"}`);
    expect([requests('allow', 0), requests('deny', 7), requests('unauthenticated', 16), requests('invalid', 3), requests('rate_limited', 8)]).toEqual([2, 2, 1, 3, 1]);
    expect(text.match(/^meshward_requests_total\{/gm)).toHaveLength(5);
    const decisions = (outcome: string, rule: string) => sample(text, `meshward_authz_decisions_total{outcome="${outcome}",rule="${rule}"}`);
    expect(decisions('allow', 'web-reads-orders')).toBe(1);
    expect(decisions('allow', 'public')).toBe(1);
    expect(decisions('deny', 'block-admin')).toBe(1);
    expect(decisions('deny', 'default')).toBe(1);
    expect(decisions('unauthenticated', 'request')).toBe(1);
    expect(decisions('invalid', 'request')).toBe(3);
    expect(decisions('rate_limited', 'slow-path')).toBe(1);
    expect(text.match(/^meshward_authz_decisions_total\{/gm)).toHaveLength(7);
    expect(sample(text, 'meshward_rate_limited_total{limit="slow-path"}')).toBe(1);
    // The engine decided seven; the two CheckRequests that could not be read never reached it.
    expect(text).toMatch(/^# TYPE meshward_authz_duration_seconds histogram$/m);
    expect(sample(text, 'meshward_authz_duration_seconds_count')).toBe(7);
    expect(sample(text, 'meshward_authz_duration_seconds_bucket{le="+Inf"}')).toBe(7);
    expect(sample(text, 'meshward_policy_reloads_total')).toBe(0);
    expect(sample(text, 'meshward_policy_reload_failures_total')).toBe(0);
    expect(sample(text, 'meshward_denial_spikes_total')).toBe(0);
    // Nothing from a request's path, host or principal becomes a label.
    expect(text).not.toMatch(/\/api\/|spiffe:\/\/|10\.0\.0\.7/);
  });

  it("writes one audit record per Check, in the sidecar's shape, that `meshward audit verify` accepts", async () => {
    const records = await vi.waitFor(() => {
      const written = auditRecords();
      expect(written.map((r) => r.requestId)).toEqual(sent);
      return written;
    }, settle);
    const byId = new Map(records.map((r) => [r.requestId, r]));
    for (const r of records) {
      expect(r).toMatchObject({ type: 'authz', direction: 'check', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), latencyMs: expect.any(Number) });
      expect(Object.keys(r).slice(-2)).toEqual(['prev', 'hash']);
    }
    expect(byId.get('req-allow')).toEqual({
      type: 'authz',
      time: expect.any(String),
      direction: 'check',
      requestId: 'req-allow',
      traceId: TRACE_ID,
      principal: WEB,
      sourceIp: '10.0.0.7',
      method: 'GET',
      host: 'orders',
      path: '/api/orders/1', // the query can carry a token: it is never written
      decision: { outcome: 'allow', rule: 'web-reads-orders' },
      status: 200,
      latencyMs: expect.any(Number),
      prev: expect.stringMatching(/^0{64}$/),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(byId.get('req-deny')).toMatchObject({ traceId: TRACE_ID, path: '/admin/users', decision: { outcome: 'deny', rule: 'block-admin' }, status: 403 });
    expect(byId.get('req-default')).toMatchObject({ principal: OTHER, decision: { outcome: 'deny', rule: 'default' }, status: 403 });
    expect(byId.get('req-default')).not.toHaveProperty('traceId'); // invalid traceparent: no trace to tie it to
    expect(byId.get('req-unauthenticated')).toMatchObject({ decision: { outcome: 'unauthenticated', rule: 'request' }, status: 401 });
    expect(byId.get('req-bad-path')).toMatchObject({ path: '/api/orders%2F..%2Fadmin', decision: { outcome: 'invalid', rule: 'request' }, status: 400 });
    expect(byId.get('req-slow-1')).toMatchObject({ decision: { outcome: 'allow', rule: 'public', audit: ['watch-public'] }, status: 200 });
    expect(byId.get('req-slow-1')).not.toHaveProperty('principal');
    expect(byId.get('req-slow-2')).toMatchObject({ decision: { outcome: 'rate_limited', rule: 'slow-path' }, status: 429 });
    for (const id of sent.slice(-2)) {
      const r = byId.get(id)!;
      expect(r).toMatchObject({ decision: { outcome: 'invalid', rule: 'request' }, status: 400 });
      expect(r).not.toHaveProperty('method');
    }
    expect(readFileSync(auditFile, 'utf8')).not.toContain('s3cret');

    const verified = await runCli(['audit', 'verify', auditFile]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`OK: ${sent.length} record(s)`);
  });

  it('warns of a denial spike once and counts it', async () => {
    for (let i = 0; i < 25; i++) {
      const id = `req-noisy-${i}`;
      expect((await check(client, envoyCheckRequest({ principal: NOISY, path: `/admin/${i}`, id }))).status.code).toBe(7);
      sent.push(id);
    }
    const text = await metrics();
    expect(sample(text, 'meshward_denial_spikes_total')).toBe(1);
    expect(sample(text, 'meshward_authz_decisions_total{outcome="deny",rule="block-admin"}')).toBe(26);
    await vi.waitFor(() => {
      const warnings = jsonLines(output()).filter((l) => l.msg === 'denial spike: this caller is denied far more often than usual');
      expect(warnings).toEqual([expect.objectContaining({ level: 'warn', caller: NOISY, denials: 20, windowSeconds: 10 })]);
    }, settle);
  });

  it('counts policy reloads and refused policies', async () => {
    const series = async (name: string) => sample(await metrics(), name);
    child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await series('meshward_policy_reloads_total')).toBe(1), settle);
    writeFileSync(policyFile, 'rules: [');
    await vi.waitFor(async () => expect(await series('meshward_policy_reload_failures_total')).toBe(1), settle);
    expect(await series('meshward_policy_reloads_total')).toBe(1);
    writeFileSync(policyFile, POLICY);
    await vi.waitFor(async () => expect(await series('meshward_policy_reloads_total')).toBe(2), settle);
  });

  it('on SIGTERM: not ready while a call drains, which is answered and audited; the log verifies after exit', async () => {
    await vi.waitFor(() => expect(auditRecords()).toHaveLength(sent.length), settle);
    // A Check whose message has not arrived yet holds the drain open.
    const session = connect(`http://${address}`);
    await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
    const types = loadCheckTypes();
    const body = frameMessage(
      types.CheckRequest.encode(
        types.CheckRequest.fromObject({ attributes: { source: { principal: WEB }, request: { http: { id: 'req-last', method: 'GET', path: '/api/orders/9', host: 'orders' } } } }),
      ).finish(),
    );
    const stream = session.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let trailers: Record<string, unknown> = {};
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (t) => (trailers = t));
    const answered = new Promise((resolve, reject) => stream.once('close', resolve).once('error', reject));
    // The server acknowledges a PING after the frames sent before it: the call is open on its side.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));

    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(jsonLines(output())).toContainEqual(expect.objectContaining({ msg: 'shutting down' })), settle);
    expect((await curl(`http://${admin}/readyz`)).status).toBe(503);
    expect((await curl(`http://${admin}/healthz`)).status).toBe(200);

    stream.end(body);
    await answered;
    session.close();
    expect(trailers['grpc-status']).toBe('0');
    const response = types.CheckResponse.toObject(types.CheckResponse.decode(Buffer.concat(chunks).subarray(5)), { defaults: true });
    expect(response).toMatchObject({ status: { code: 0 } });
    expect(await exited).toBe(0);
    sent.push('req-last');

    const records = auditRecords();
    expect(records.map((r) => r.requestId)).toEqual(sent);
    expect(records.at(-1)).toMatchObject({ requestId: 'req-last', decision: { outcome: 'allow', rule: 'web-reads-orders' }, status: 200 });
    const verified = await runCli(['audit', 'verify', auditFile]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`OK: ${sent.length} record(s)`);
    // The head hash logged at exit is the one the file ends with: a truncated log would not match it.
    const closed = jsonLines(output()).find((l) => l.msg === 'audit log closed');
    expect(closed).toMatchObject({ file: auditFile, head: records.at(-1)!.hash });
    expect(verified.stdout).toContain(`head ${String(closed!.head)}`);
  });
});

describe('meshward authz --admin / --audit usage', () => {
  it('refuses a bad admin address (exit 2) and an audit log it cannot open (exit 1, naming the file)', async () => {
    const { dir, cleanup } = tempDir('meshward-authz-observability-');
    try {
      const policy = join(dir, 'policy.yaml');
      writeFileSync(policy, 'defaultAction: deny\n');
      const badAdmin = await runCli(['authz', '--policy', policy, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1']);
      expect(badAdmin.code).toBe(2);
      expect(badAdmin.stderr).toContain('--admin "127.0.0.1" is not HOST:PORT');
      const missing = join(dir, 'no-such-dir', 'audit.log');
      const badAudit = await runCli(['authz', '--policy', policy, '--listen', '127.0.0.1:0', '--audit', missing]);
      expect(badAudit.code).toBe(1);
      expect(badAudit.stderr).toContain(`${missing}: cannot open the audit log: no such directory`);
    } finally {
      cleanup();
    }
  });
});

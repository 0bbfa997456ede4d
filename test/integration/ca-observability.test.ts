// `meshward ca serve --admin` as an operator sees it: a real child process, SVIDs bought over gRPC+TLS with join
// tokens and renewals, refusals, /metrics and /certs read with curl, and the audit log, shared with an offline
// `ca issue` running at the same time, checked by `meshward audit verify`.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCsr, mintJoinToken } from '../../src/ca/index.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { auditRecords, bundleWithRoots, initCaDir, serveCa, TD, type ServingCa } from '../helpers/ca.js';
import { ecKey } from '../helpers/pki.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const SERVING = `spiffe://${TD}/meshward/ca`;
/** Every field a `ca` audit record may have: nothing else (no token, key or CSR) may appear. */
const RECORD_FIELDS = ['type', 'time', 'requestId', 'traceId', 'principal', 'method', 'spiffeId', 'decision', 'reason', 'message', 'serial', 'notAfter', 'dnsNames', 'latencyMs', 'prev', 'hash'];

async function curl(url: string): Promise<{ status: number; body: string }> {
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', url]);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** Every sample of a Prometheus text exposition, by its series (`name{labels}`). */
async function scrape(admin: string): Promise<Map<string, number>> {
  const res = await curl(`http://${admin}/metrics`);
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

async function refusal(call: Promise<unknown>): Promise<grpc.ServiceError> {
  const err = await call.then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  expect(err, 'the call should have been refused').toBeDefined();
  return err!;
}

describe('meshward ca serve --admin: health, metrics, /certs and the audit of every outcome', () => {
  const { dir, cleanup } = tempDir();
  let caDir: string;
  let auditFile: string;
  let ca: ServingCa;
  let admin: string;
  const tokens: string[] = [];
  /** A join token as `meshward ca token` makes it (that command is tested in ca-cli), without a process per token. */
  const token = (spiffeId: string) => mintJoinToken(Buffer.from(readFileSync(join(caDir, 'token.key'), 'utf8').trim(), 'base64url'), { trustDomain: TD, spiffeId, ttlSeconds: 600 });

  beforeAll(async () => {
    caDir = await initCaDir(dir, ['--max-ttl', '2h']);
    auditFile = join(caDir, 'audit.log');
    ca = await serveCa(caDir, {}, ['--admin', '127.0.0.1:0', '--workers', '1']);
    admin = /"admin":"(127\.0\.0\.1:\d+)"[^\n]*"msg":"CA listening"/.exec(ca.output())![1]!;
  });
  afterAll(async () => {
    await ca.stop();
    cleanup();
  });

  it('answers /healthz and /readyz, and shows its certificates on /certs without key material', async () => {
    expect(await curl(`http://${admin}/healthz`)).toMatchObject({ status: 200 });
    expect(await curl(`http://${admin}/readyz`)).toMatchObject({ status: 200 });
    const res = await curl(`http://${admin}/certs`);
    expect(res.status).toBe(200);
    expect(res.body).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    const root = new X509Certificate(readFileSync(join(caDir, 'root.pem')));
    const view = JSON.parse(res.body);
    expect(view).toMatchObject({
      trustDomain: TD,
      bundle: [{ serial: root.serialNumber, notAfter: new Date(root.validTo).toISOString() }],
      signing: { serial: root.serialNumber, notAfter: new Date(root.validTo).toISOString(), imported: false },
      rotation: { stage: 'none' },
      serving: { spiffeId: SERVING },
      auditLog: auditFile,
    });
    const servingLeft = Date.parse(view.serving.notAfter) - Date.now();
    expect(servingLeft).toBeGreaterThan(3500_000);
    expect(servingLeft).toBeLessThanOrEqual(3600_000);
  });

  it('counts issuances by method and refusals by reason, and records each outcome in the audit log', async () => {
    // Issued: one by join token, one renewal with that SVID, and (below) one by a token a bad CSR did not use up.
    const key = ecKey();
    tokens.push(await token(WEB));
    const first = await ca.client().sign({ csr: await makeCsr(key), joinToken: tokens[0] });
    const identity = { certChainPem: first.certChainPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string };
    // The caller's request id and trace go into the record; an id that is not a sane token is replaced.
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const renewed = await ca.client(identity).sign({ csr: await makeCsr(ecKey()), metadata: { 'x-request-id': 'renew-web-1', traceparent: `00-${trace}-00f067aa0ba902b7-01` } });

    // Refused: a used token, a token asked for another ID, a renewal asked for another ID, no credential, a bad CSR.
    const used = await refusal(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: tokens[0], metadata: { 'x-request-id': 'no spaces allowed' } }));
    expect([used.code, used.details]).toEqual([grpc.status.UNAUTHENTICATED, expect.stringMatching(/already used/)]);
    tokens.push(await token(WEB));
    const otherId = await refusal(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: tokens[1], spiffeId: ORDERS }));
    expect(otherId.code).toBe(grpc.status.PERMISSION_DENIED);
    const otherRenewal = await refusal(ca.client(identity).sign({ csr: await makeCsr(ecKey()), spiffeId: ORDERS }));
    expect(otherRenewal.code).toBe(grpc.status.PERMISSION_DENIED);
    const nobody = await refusal(ca.client().sign({ csr: await makeCsr(ecKey()) }));
    expect(nobody.code).toBe(grpc.status.UNAUTHENTICATED);
    const badCsr = await refusal(ca.client().sign({ csr: 'garbage', joinToken: tokens[1] }));
    expect(badCsr.code).toBe(grpc.status.INVALID_ARGUMENT);
    const third = await ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: tokens[1] });

    // The metrics are counted before the caller gets its answer, so they are exact now.
    const m = await scrape(admin);
    const counts = [...m].filter(([series]) => /^meshward_ca_(issuances|refusals|bundle_changes)_total\b|_count\{/.test(series));
    expect(Object.fromEntries(counts)).toEqual({
      'meshward_ca_issuances_total{method="token"}': 2,
      'meshward_ca_issuances_total{method="attested"}': 0,
      'meshward_ca_issuances_total{method="renewal"}': 1,
      'meshward_ca_issuances_total{method="self"}': 1,
      'meshward_ca_refusals_total{reason="unauthenticated"}': 2,
      'meshward_ca_refusals_total{reason="permission_denied"}': 2,
      'meshward_ca_refusals_total{reason="invalid_argument"}': 1,
      'meshward_ca_refusals_total{reason="failed_precondition"}': 0,
      'meshward_ca_refusals_total{reason="unavailable"}': 0,
      'meshward_ca_refusals_total{reason="internal"}': 0,
      'meshward_ca_sign_duration_seconds_count{decision="issued"}': 4,
      'meshward_ca_sign_duration_seconds_count{decision="refused"}': 5,
      meshward_ca_bundle_changes_total: 0,
    });
    expect(m.get('meshward_ca_sign_duration_seconds_bucket{decision="refused",le="+Inf"}')).toBe(5);
    const rootLeft = (Date.parse(new X509Certificate(readFileSync(join(caDir, 'root.pem'))).validTo) - Date.now()) / 1000;
    expect(Math.abs(m.get('meshward_ca_root_expiry_seconds')! - rootLeft)).toBeLessThan(5);
    expect(m.get('meshward_svid_expiry_seconds')).toBeGreaterThan(3500);
    expect(m.get('meshward_svid_expiry_seconds')).toBeLessThanOrEqual(3600);

    // And the audit log has them all, in order, each on disk before its caller heard back.
    const records = auditRecords(auditFile);
    expect(records.map((r) => [r.method, r.decision, r.reason ?? r.spiffeId])).toEqual([
      ['self', 'issued', SERVING],
      ['token', 'issued', WEB],
      ['renewal', 'issued', WEB],
      ['token', 'refused', 'unauthenticated'],
      ['token', 'refused', 'permission_denied'],
      ['renewal', 'refused', 'permission_denied'],
      ['none', 'refused', 'unauthenticated'],
      ['token', 'refused', 'invalid_argument'],
      ['token', 'issued', WEB],
    ]);
    const [, byToken, renewal, replay, tokenOtherId, renewalOtherId, anonymous, , byToken2] = records;
    expect(byToken).toMatchObject({ type: 'ca', principal: WEB, spiffeId: WEB, serial: first.serial, notAfter: new Date(first.notAfterUnix * 1000).toISOString() });
    expect(renewal).toMatchObject({ principal: WEB, spiffeId: WEB, serial: renewed.serial, requestId: 'renew-web-1', traceId: trace });
    expect(byToken2).toMatchObject({ serial: third.serial });
    expect(replay).toMatchObject({ principal: WEB, message: expect.stringMatching(/already used/) });
    expect(tokenOtherId).toMatchObject({ principal: WEB, spiffeId: ORDERS, message: expect.stringMatching(/bound to another ID/) });
    expect(renewalOtherId).toMatchObject({ principal: WEB, spiffeId: ORDERS, message: expect.stringMatching(/renewal keeps the identity/) });
    expect(anonymous).not.toHaveProperty('principal');
    for (const r of records) {
      expect(RECORD_FIELDS).toEqual(expect.arrayContaining(Object.keys(r)));
      if (r === renewal) continue;
      expect(r).toMatchObject({ time: expect.any(String), requestId: expect.stringMatching(/^[0-9a-f-]{36}$/), latencyMs: expect.any(Number) });
      expect(r).not.toHaveProperty('traceId');
      if (r.decision === 'issued') expect(r).not.toHaveProperty('reason');
      else expect(r).not.toHaveProperty('serial');
    }
    const text = readFileSync(auditFile, 'utf8');
    for (const t of tokens) expect(text).not.toContain(t);
    expect(text).not.toContain('-----BEGIN');

    const verify = await runCli(['audit', 'verify', auditFile]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('OK: 9 record(s)');
  });

  it('keeps one chain when offline `ca issue` and `ca sign` append while the server signs', async () => {
    const before = auditRecords(auditFile).length;
    const key = ecKey();
    const base = await ca.client().sign({ csr: await makeCsr(key), joinToken: await token(ORDERS) });
    const identity = { certChainPem: base.certChainPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string };
    const client = ca.client(identity);
    // Renewals keep arriving at the server for as long as the offline commands run.
    let offlineDone = false;
    let renewals = 0;
    const renewing = (async () => {
      while (!offlineDone) {
        await client.sign({ csr: await makeCsr(ecKey()) });
        renewals++;
      }
    })();
    writeFileSync(join(dir, 'offline.csr'), await makeCsr(ecKey()));
    const offline = await Promise.all([
      runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', join(dir, 'offline-1')]),
      runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'offline.csr'), '--spiffe-id', ORDERS]),
    ]).finally(() => (offlineDone = true));
    await renewing;
    for (const r of offline) expect(r.code, r.stderr).toBe(0);
    expect(renewals).toBeGreaterThan(0);

    const records = auditRecords(auditFile).slice(before);
    expect(records).toHaveLength(1 + renewals + 2);
    const offlineRecords = records.filter((r) => r.method === 'offline');
    expect(offlineRecords.map((r) => r.spiffeId).sort()).toEqual([ORDERS, WEB].sort());
    for (const r of offlineRecords) {
      expect(r).toMatchObject({ decision: 'issued', principal: expect.stringMatching(/^operator:/), serial: expect.any(String) });
      expect(r).not.toHaveProperty('requestId');
    }
    const verify = await runCli(['audit', 'verify', auditFile]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(`OK: ${before + records.length} record(s)`);
    expect((await scrape(admin)).get('meshward_ca_issuances_total{method="renewal"}')).toBe(1 + renewals);
  });

  it('records an offline refusal too, and --audit moves the log; a log that cannot be opened stops the command', async () => {
    const elsewhere = join(dir, 'offline-audit.log');
    const refused = await runCli(['ca', 'sign', '--dir', caDir, '--csr', join(dir, 'offline-1.pem'), '--spiffe-id', WEB, '--audit', elsewhere]);
    expect(refused.code).toBe(1);
    expect(auditRecords(elsewhere)).toEqual([expect.objectContaining({ method: 'offline', decision: 'refused', reason: 'invalid_argument', spiffeId: WEB })]);

    const unopenable = join(dir, 'no-such-dir', 'audit.log');
    const issue = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', WEB, '--out', join(dir, 'never'), '--audit', unopenable]);
    expect(issue.code).toBe(1);
    expect(issue.stderr).toContain('cannot open the audit log');
    expect(existsSync(join(dir, 'never.pem'))).toBe(false);
    const serve = await runCli(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit', unopenable]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('cannot open the audit log');
  });

  it('counts a bundle change when a rotation starts, and shows the stage on /certs', async () => {
    const twoRoots = bundleWithRoots(ca.client(), 2);
    const r = await runCli(['ca', 'rotate', '--dir', caDir, '--propagation-delay', '1h']);
    expect(r.code, r.stderr).toBe(0);
    await twoRoots;
    expect((await scrape(admin)).get('meshward_ca_bundle_changes_total')).toBe(1);
    const view = JSON.parse((await curl(`http://${admin}/certs`)).body);
    expect(view.bundle).toHaveLength(2);
    expect(view.rotation).toMatchObject({ stage: 'propagating', activateAt: expect.any(String) });
  });

  it('fails closed: once its audit log is gone it refuses to issue, and says why', async () => {
    renameSync(auditFile, `${auditFile}.moved`);
    const before = auditRecords(`${auditFile}.moved`).length;
    const err = await refusal(ca.client().sign({ csr: await makeCsr(ecKey()), joinToken: await token(WEB) }));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toMatch(/could not record this issuance in its audit log, so nothing was issued/);
    expect(existsSync(auditFile)).toBe(false);
    expect(auditRecords(`${auditFile}.moved`)).toHaveLength(before);
    expect((await scrape(admin)).get('meshward_ca_refusals_total{reason="unavailable"}')).toBe(1);
    expect(ca.output()).toMatch(/audit log append failed; the SVID was not issued/);
  });
});

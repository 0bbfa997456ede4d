// `meshward authz` as Envoy sees it: a real child process, called by clients built from the official Envoy
// protos (envoy-client.ts). Every outcome of the issue-3 contract is checked here.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { credentials, type Client } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/eventually.js';
import { makeTestCerts } from './certs.js';
import {
  authorizationClient,
  check,
  checkWithRawBytes,
  envoyCheckRequest,
  headerValue,
  healthStatus,
  reflect,
  type CheckResponse,
} from './envoy-client.js';

const FIXTURES = resolve(REPO_ROOT, 'test/fixtures/authz');
const WEB = 'spiffe://example.org/ns/default/sa/web';
const LISTENING = /^.*"msg":"listening".*$/m;

interface Running {
  child: ChildProcess;
  address: string;
  output: () => string;
}

async function startAuthz(args: string[]): Promise<Running> {
  const { child, match, output } = await startCli(['authz', '--listen', '127.0.0.1:0', ...args], LISTENING);
  return { child, output, address: (JSON.parse(match[0]) as { address: string }).address };
}

const logLines = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function deniedBody(response: CheckResponse): unknown {
  return JSON.parse(response.denied_response?.body ?? 'null');
}

describe('meshward authz, called with the official Envoy protos', () => {
  let server: Running;
  let client: Client;

  beforeAll(async () => {
    server = await startAuthz(['--policy', join(FIXTURES, 'policy.yaml')]);
    client = authorizationClient(server.address);
  });
  afterAll(async () => {
    client?.close();
    if (server) expect(await stopChild(server.child)).toBe(0);
  });

  it('allows with x-meshward-principal set to the verified caller (overwriting a forged copy)', async () => {
    const response = await check(client, envoyCheckRequest({ principal: WEB, headers: { 'x-meshward-principal': 'spiffe://evil/x' } }));
    expect(response.status.code).toBe(0);
    expect(response.http_response).toBe('ok_response');
    const headers = response.ok_response?.headers;
    expect(headerValue(headers, 'x-meshward-principal')).toBe(WEB);
    expect(headers?.[0]?.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    expect(headers?.[0]?.append).toBeUndefined(); // unset `append` means overwrite to older Envoys as well
    // Envoy applies headers_to_remove after headers: listing the header there too would strip the real value.
    expect(response.ok_response?.headers_to_remove ?? []).not.toContain('x-meshward-principal');
  });

  it('allows a caller without identity with any incoming x-meshward-principal removed', async () => {
    const response = await check(client, envoyCheckRequest({ path: '/public/index.html', headers: { 'x-meshward-principal': WEB } }));
    expect(response.status.code).toBe(0);
    expect(response.ok_response?.headers_to_remove).toEqual(['x-meshward-principal']);
    expect(headerValue(response.ok_response?.headers, 'x-meshward-principal')).toBeUndefined();
  });

  it('reads header_map when Envoy sends raw headers instead of the headers map', async () => {
    const response = await check(client, envoyCheckRequest({ principal: WEB, asHeaderMap: true }));
    expect(response.status.code).toBe(0);
  });

  it('denies with 403, the rule, x-meshward-denied-by and a JSON body', async () => {
    const response = await check(client, envoyCheckRequest({ principal: WEB, path: '/admin/users', id: 'req-admin' }));
    expect(response.status.code).toBe(7);
    expect(response.http_response).toBe('denied_response');
    expect(response.denied_response?.status.code).toBe('Forbidden');
    expect(headerValue(response.denied_response?.headers, 'x-meshward-denied-by')).toBe('block-admin');
    expect(headerValue(response.denied_response?.headers, 'content-type')).toBe('application/json');
    expect(deniedBody(response)).toEqual({ error: 'forbidden', rule: 'block-admin', requestId: 'req-admin' });
  });

  it('denies by default with rule "default"', async () => {
    const response = await check(client, envoyCheckRequest({ principal: 'spiffe://example.org/ns/x/sa/y', id: 'req-2' }));
    expect(response.status.code).toBe(7);
    expect(deniedBody(response)).toEqual({ error: 'forbidden', rule: 'default', requestId: 'req-2' });
  });

  it('refuses a path that does not normalise with 400', async () => {
    const response = await check(client, envoyCheckRequest({ principal: WEB, path: '/api/orders%2F..%2Fadmin' }));
    expect(response.status.code).toBe(3);
    expect(response.denied_response?.status.code).toBe('BadRequest');
  });

  it('rate-limits with 429 and retry-after', async () => {
    const request = envoyCheckRequest({ path: '/public/slow' });
    expect((await check(client, request)).status.code).toBe(0);
    const limited = await check(client, request);
    expect(limited.status.code).toBe(8);
    expect(limited.denied_response?.status.code).toBe('TooManyRequests');
    expect(Number(headerValue(limited.denied_response?.headers, 'retry-after'))).toBeGreaterThan(0);
    expect(deniedBody(limited)).toMatchObject({ error: 'rate_limited', limit: 'slow-path' });
  });

  it.each([
    ['no attributes', {}, 'CheckRequest has no attributes'],
    ['no request.http', { attributes: { request: {} } }, 'CheckRequest has no attributes.request.http'],
    ['no method', { attributes: { request: { http: { path: '/public/x' } } } }, 'attributes.request.http.method is empty'],
    ['no path', { attributes: { request: { http: { method: 'GET' } } } }, 'attributes.request.http.path is empty'],
  ])('denies a request with %s (fail closed) and logs why', async (_what, request, reason) => {
    const response = await check(client, request);
    expect(response.status.code).toBe(3);
    expect(response.denied_response?.status.code).toBe('BadRequest');
    expect(deniedBody(response)).toMatchObject({ error: 'bad_request', reason });
    await waitFor('the log line', () => logLines(server.output()), (lines) => lines.some((l) => l.msg === 'malformed CheckRequest denied' && l.reason === reason));
  });

  it('denies bytes that are not a CheckRequest, and keeps serving', async () => {
    const response = await checkWithRawBytes(client, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(response.status.code).toBe(3);
    expect(response.denied_response?.status.code).toBe('BadRequest');
    expect((await check(client, envoyCheckRequest({ principal: WEB }))).status.code).toBe(0);
  });

  it('reports SERVING on grpc.health.v1.Health, overall and for the Authorization service', async () => {
    expect(await healthStatus(server.address, '')).toBe('SERVING');
    expect(await healthStatus(server.address, 'envoy.service.auth.v3.Authorization')).toBe('SERVING');
  });

  it('lists and describes its services through server reflection', async () => {
    const listed = await reflect(server.address, { list_services: '*' });
    const services = listed.list_services_response?.service.map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(['envoy.service.auth.v3.Authorization', 'grpc.health.v1.Health']));
    const described = await reflect(server.address, { file_containing_symbol: 'envoy.service.auth.v3.Authorization' });
    expect(described.file_descriptor_response?.file_descriptor_proto.length).toBeGreaterThan(0);
  });
});

describe('meshward authz with explainDenials: false', () => {
  it('denies without naming the rule', async () => {
    const server = await startAuthz(['--policy', join(FIXTURES, 'policy-unexplained.yaml')]);
    const client = authorizationClient(server.address);
    try {
      const response = await check(client, envoyCheckRequest({ path: '/admin/x', id: 'req-3' }));
      expect(response.status.code).toBe(7);
      expect(response.status.message).toBe('denied by policy');
      expect(deniedBody(response)).toEqual({ error: 'forbidden', requestId: 'req-3' });
      expect(headerValue(response.denied_response?.headers, 'x-meshward-denied-by')).toBe('policy');
    } finally {
      client.close();
      await stopChild(server.child);
    }
  });
});

describe('meshward authz with a JWT policy', () => {
  it('answers 401 with www-authenticate for a missing or invalid token, and allows a valid one', async () => {
    const { dir, cleanup } = tempDir('meshward-authz-jwt-');
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
    writeFileSync(
      join(dir, 'policy.yaml'),
      [
        'jwt: { issuer: "https://issuer.example", audiences: ["orders"], jwksFile: jwks.json, required: true }',
        'rules:',
        '  - name: readers',
        '    action: allow',
        '    when: [{ key: "jwt.claims.scope", values: ["orders.read"] }]',
      ].join('\n'),
    );
    const token = (scope: string, issuer = 'https://issuer.example') =>
      new SignJWT({ scope })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience('orders')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const server = await startAuthz(['--policy', join(dir, 'policy.yaml')]);
    const client = authorizationClient(server.address);
    try {
      const missing = await check(client, envoyCheckRequest());
      expect(missing.status.code).toBe(16);
      expect(missing.denied_response?.status.code).toBe('Unauthorized');
      expect(headerValue(missing.denied_response?.headers, 'www-authenticate')).toMatch(/^Bearer/);

      const forged = await check(client, envoyCheckRequest({ headers: { authorization: `Bearer ${await token('orders.read', 'https://evil')}` } }));
      expect(forged.status.code).toBe(16);
      expect(headerValue(forged.denied_response?.headers, 'www-authenticate')).toContain('invalid_token');

      const valid = await check(client, envoyCheckRequest({ headers: { authorization: `Bearer ${await token('orders.read')}` } }));
      expect(valid.status.code).toBe(0);
      const wrongScope = await check(client, envoyCheckRequest({ headers: { authorization: `Bearer ${await token('orders.write')}` } }));
      expect(wrongScope.status.code).toBe(7);
    } finally {
      client.close();
      await stopChild(server.child);
      cleanup();
    }
  });
});

describe('meshward authz over mutual TLS', () => {
  it('serves clients with a certificate from the CA and refuses the others', async () => {
    const { dir, cleanup } = tempDir('meshward-authz-mtls-');
    const certs = makeTestCerts(dir);
    const server = await startAuthz([
      '--policy', join(FIXTURES, 'policy.yaml'),
      '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.caCert,
    ]);
    expect(logLines(server.output()).find((l) => l.msg === 'listening')).toMatchObject({ tls: true });
    const ca = readFileSync(certs.caCert);
    const withCert = (key: string, cert: string) => credentials.createSsl(ca, readFileSync(key), readFileSync(cert));
    // grpc-js sends the target's host as the TLS server name, and Node.js 26 refuses an IP address there: name
    // the server by its DNS SAN instead, as a grpc-js client of an authz server on an IP must.
    const byName = { 'grpc.ssl_target_name_override': 'localhost' };
    const trusted = authorizationClient(server.address, withCert(certs.clientKey, certs.clientCert), byName);
    const anonymous = authorizationClient(server.address, credentials.createSsl(ca), byName);
    const stranger = authorizationClient(server.address, withCert(certs.strangerKey, certs.strangerCert), byName);
    const plain = authorizationClient(server.address);
    try {
      expect((await check(trusted, envoyCheckRequest({ principal: WEB }))).status.code).toBe(0);
      await expect(check(anonymous, envoyCheckRequest({ principal: WEB }))).rejects.toThrow(/UNAVAILABLE/);
      await expect(check(stranger, envoyCheckRequest({ principal: WEB }))).rejects.toThrow(/UNAVAILABLE/);
      await expect(check(plain, envoyCheckRequest({ principal: WEB }))).rejects.toThrow(/UNAVAILABLE/);
    } finally {
      for (const c of [trusted, anonymous, stranger, plain]) c.close();
      await stopChild(server.child);
      cleanup();
    }
  });
});

describe('meshward authz policy reload', () => {
  let dir: string;
  let cleanup: () => void;
  let policyFile: string;
  let server: Running;
  let client: Client;
  const adminAllowed = async () => (await check(client, envoyCheckRequest({ principal: WEB, path: '/admin/users' }))).status.code === 0;
  const allowAdmin = (text: string) => text.replace('paths: ["/admin/**"]', 'paths: ["/nothing-here"]');

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir('meshward-authz-reload-'));
    policyFile = join(dir, 'policy.yaml');
    copyFileSync(join(FIXTURES, 'policy.yaml'), policyFile);
    server = await startAuthz(['--policy', policyFile]);
    client = authorizationClient(server.address);
  });
  afterAll(async () => {
    client?.close();
    if (server) await stopChild(server.child);
    cleanup?.();
  });

  const rejections = () => logLines(server.output()).filter((l) => l.msg === 'policy rejected; the last good policy stays in force');

  it('puts a valid change in force without a restart (file watch)', async () => {
    const original = readFileSync(policyFile, 'utf8');
    expect(await adminAllowed()).toBe(false);
    // The admin deny rule now matches nothing, and web may read /admin/** too.
    writeFileSync(policyFile, allowAdmin(original).replace('paths: ["/api/orders", "/api/orders/*"]', 'paths: ["/api/orders", "/api/orders/*", "/admin/**"]'));
    await waitFor('the new policy', adminAllowed, (allowed) => allowed);
    writeFileSync(policyFile, original);
    await waitFor('the original policy', adminAllowed, (allowed) => !allowed);
  });

  it('keeps the last good policy when the new one is invalid, and logs and counts the rejection (file watch)', async () => {
    const before = rejections().length;
    const good = readFileSync(policyFile, 'utf8');
    writeFileSync(policyFile, readFileSync(join(FIXTURES, 'policy-invalid.yaml')));
    const [rejection] = (await waitFor('the rejection', rejections, (r) => r.length > before)).slice(before);
    expect(rejection).toMatchObject({ trigger: 'file change', rejected: before + 1 });
    expect(rejection!.error).toContain('policy.yaml: rules[0].from.principals[0]: "spiffe:/x" is not a SPIFFE ID');
    expect((await check(client, envoyCheckRequest({ principal: WEB }))).status.code).toBe(0);
    expect(await adminAllowed()).toBe(false);
    writeFileSync(policyFile, good);
    await waitFor('the good policy again', () => logLines(server.output()).filter((l) => l.msg === 'policy reloaded').length, (n) => n >= 3);
  });

  it('reloads on SIGHUP, and rejects an invalid policy on SIGHUP too', async () => {
    const reloadsBySignal = () => logLines(server.output()).filter((l) => l.trigger === 'SIGHUP');
    server.child.kill('SIGHUP');
    await waitFor('a SIGHUP reload', reloadsBySignal, (lines) => lines.some((l) => l.msg === 'policy reloaded'));

    writeFileSync(policyFile, readFileSync(join(FIXTURES, 'policy-invalid.yaml')));
    server.child.kill('SIGHUP');
    await waitFor('a SIGHUP rejection', reloadsBySignal, (lines) => lines.some((l) => l.msg === 'policy rejected; the last good policy stays in force'));
    expect((await check(client, envoyCheckRequest({ principal: WEB }))).status.code).toBe(0);
    expect(await adminAllowed()).toBe(false);
  });
});

describe('meshward authz start and stop', () => {
  it('exits non-zero with the ConfigError when the policy is invalid at start', async () => {
    const r = await runCli(['authz', '--policy', join(FIXTURES, 'policy-invalid.yaml'), '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('policy-invalid.yaml: rules[0].from.principals[0]: "spiffe:/x" is not a SPIFFE ID');
  });

  it('exits non-zero naming a missing policy file or TLS file', async () => {
    const missing = await runCli(['authz', '--policy', '/nonexistent/policy.yaml', '--listen', '127.0.0.1:0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('policy.yaml: file not found');
    const policy = join(FIXTURES, 'policy.yaml');
    const tls = await runCli(['authz', '--policy', policy, '--listen', '127.0.0.1:0', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem', '--tls-ca', '/nonexistent/ca.pem']);
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/\/nonexistent\/\w+\.pem: cannot read the .*: file not found/);
  });

  it('refuses a wrong invocation with exit code 2', async () => {
    const policy = join(FIXTURES, 'policy.yaml');
    expect((await runCli(['authz', '--listen', '127.0.0.1:0'])).stderr).toContain('missing required flag --policy');
    const badListen = await runCli(['authz', '--policy', policy, '--listen', '127.0.0.1']);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toContain('is not HOST:PORT');
    const partialTls = await runCli(['authz', '--policy', policy, '--listen', '127.0.0.1:0', '--tls-cert', 'c.pem']);
    expect(partialTls.code).toBe(2);
    expect(partialTls.stderr).toContain('needs all of --tls-cert, --tls-key and --tls-ca');
  });

  it('shuts down gracefully on SIGTERM with exit code 0', async () => {
    const server = await startAuthz(['--policy', join(FIXTURES, 'policy.yaml')]);
    expect(await stopChild(server.child, 'SIGTERM')).toBe(0);
    expect(logLines(server.output()).map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });
});

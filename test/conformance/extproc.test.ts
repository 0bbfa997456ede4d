// `meshward extproc` as Envoy sees it: a real child process, driven over real gRPC by a client built from the
// official Envoy protos (ext-proc-client.ts), one Process stream per HTTP request, as Envoy's ext_proc filter does.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { credentials, type Client } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REQUEST_ATTRIBUTES } from '../../src/extproc/request-context.js';
import { REPO_ROOT, runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/eventually.js';
import { rawGrpcCall } from '../helpers/raw-grpc.js';
import {
  Exchange,
  externalProcessorClient,
  framed,
  PROCESS_PATH,
  requestBody,
  requestHeaders,
  responseBody,
  responseHeaders,
  setHeaders,
  unframed,
  type ProcessingResponse,
} from './ext-proc-client.js';
import { makeTestCerts } from './certs.js';
import { envoyConfigProblems } from './envoy-config.js';
import { officialProtoRoot } from './official-protos.js';

const LISTENING = /^.*"msg":"listening".*$/m;
const ORIGIN = 'https://app.example.com';
const WEB = 'spiffe://example.org/ns/default/sa/web';
const INVALID_ARGUMENT = 3;

interface Running {
  child: ChildProcess;
  address: string;
  client: Client;
  output: () => string;
}

async function startExtProc(configFile: string, flags: string[] = []): Promise<Running> {
  const { child, match, output } = await startCli(['extproc', '--config', configFile, '--listen', '127.0.0.1:0', ...flags], LISTENING);
  const { address } = JSON.parse(match[0]) as { address: string };
  return { child, output, address, client: externalProcessorClient(address) };
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return;
  running.client.close();
  expect(await stopChild(running.child)).toBe(0);
}

const request = (method: string, path: string, headers: Record<string, string> = {}) => ({
  ':method': method,
  ':path': path,
  ':authority': 'orders.example.com',
  ':scheme': 'https',
  'x-request-id': 'req-1',
  ...headers,
});

function immediate(answer: ProcessingResponse) {
  expect(answer.response).toBe('immediate_response');
  const reply = answer.immediate_response!;
  return { status: reply.status.code, headers: setHeaders(reply.headers), body: JSON.parse(reply.body!.toString()) as Record<string, unknown> };
}

describe('meshward extproc: a listener chain for Envoy, called with the official protos', () => {
  const { dir, cleanup } = tempDir('meshward-extproc-');
  let server: Running | undefined;
  let key: string;

  beforeAll(async () => {
    const created = await runCli(['apikey', 'create', '--name', 'billing', '--file', join(dir, 'keys.yaml')]);
    expect(created.code).toBe(0);
    key = created.stdout.trim();
    copyFileSync(resolve(REPO_ROOT, 'test/fixtures/openapi/orders-3.0.yaml'), join(dir, 'orders.yaml'));
    writeFileSync(
      join(dir, 'extproc.yaml'),
      [
        'filters:',
        `  - cors: { allowOrigins: ["${ORIGIN}"], allowMethods: [GET, POST], allowHeaders: [content-type, x-api-key, x-tenant] }`,
        '  - apiKey: { keysFile: keys.yaml }',
        '  - validate: { openapi: orders.yaml }',
        '  - mask: { fields: [{ name: card, mode: partial }, { name: ssn }] }',
        '  - headers: { request: { set: { x-gateway: meshward } }, response: { set: { x-served-by: meshward } }, securityHeaders: true }',
        '',
      ].join('\n'),
    );
    server = await startExtProc(join(dir, 'extproc.yaml'));
  });
  afterAll(async () => {
    await stop(server);
    cleanup();
  });

  it('lets a request through with the chain\'s changes, and changes the response on its way back', async () => {
    const exchange = new Exchange(server!.client);
    const headers = request('GET', '/orders?limit=5', { 'x-api-key': key, 'x-tenant': 'acme', 'x-meshward-principal': 'spiffe://example.org/forged', origin: ORIGIN });
    const onRequest = await exchange.ask(requestHeaders({ headers, endOfStream: true }));
    expect(onRequest.response).toBe('request_headers');
    // No body to read, and the chain has a response side: Envoy's processing mode stays as configured.
    expect(onRequest.mode_override).toBeUndefined();
    const mutation = onRequest.request_headers!.response!.header_mutation!;
    expect(setHeaders(mutation)).toEqual({ 'accept-encoding': ['identity'], 'x-gateway': ['meshward'] });
    expect(mutation.set_headers!.every((o) => o.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD' && o.append === undefined)).toBe(true);
    // Values go back the way Envoy sent them (raw_value), never in both fields.
    expect(mutation.set_headers!.every((o) => o.header.raw_value !== undefined && !o.header.value)).toBe(true);
    // The key never reaches the app; nor does a principal meshward did not set.
    expect(mutation.remove_headers).toEqual(expect.arrayContaining(['x-api-key', 'x-meshward-principal', 'x-gateway', 'accept-encoding']));

    const onResponse = await exchange.ask(responseHeaders({ headers: { ':status': '200', 'content-type': 'text/csv', server: 'app/1.0' }, endOfStream: false }));
    expect(onResponse.response).toBe('response_headers');
    expect(onResponse.mode_override).toBeUndefined(); // not JSON: mask does not read it, and it streams
    const changes = onResponse.response_headers!.response!.header_mutation!;
    expect(setHeaders(changes)).toMatchObject({
      'x-served-by': ['meshward'],
      'x-content-type-options': ['nosniff'],
      'access-control-allow-origin': [ORIGIN],
      'strict-transport-security': [expect.stringMatching(/^max-age=/)],
    });
    expect(changes.remove_headers).toEqual(['server']);
    expect(await exchange.end()).toMatchObject({ code: 0 });
  });

  it('answers values in `value` to an Envoy that sends them there', async () => {
    const exchange = new Exchange(server!.client);
    const answer = await exchange.ask(requestHeaders({ headers: request('GET', '/orders/latest', { 'x-api-key': key }), endOfStream: true, plainValues: true }));
    const options = answer.request_headers!.response!.header_mutation!.set_headers!;
    expect(options.length).toBeGreaterThan(0);
    expect(options.every((o) => o.header.value !== undefined && o.header.raw_value === undefined)).toBe(true);
    expect(setHeaders(answer.request_headers!.response!.header_mutation)['x-gateway']).toEqual(['meshward']);
    await exchange.end();
  });

  it('answers a request without an API key at once: 401, with CORS headers from the filter before it', async () => {
    const exchange = new Exchange(server!.client);
    const reply = immediate(await exchange.ask(requestHeaders({ headers: request('GET', '/orders', { origin: ORIGIN }), endOfStream: true })));
    expect(reply.status).toBe('Unauthorized');
    expect(reply.body).toEqual({ error: 'unauthenticated', reason: 'an API key is required', requestId: 'req-1' });
    expect(reply.headers).toMatchObject({ 'content-type': ['application/json'], 'www-authenticate': [expect.stringContaining('ApiKey')], 'access-control-allow-origin': [ORIGIN] });
    // Only the filters whose request side ran see the answer: `headers` comes after apiKey.
    expect(reply.headers['x-served-by']).toBeUndefined();
    expect(await exchange.end()).toMatchObject({ code: 0 });
  });

  it('answers a CORS preflight itself: it never reaches the app', async () => {
    const exchange = new Exchange(server!.client);
    const headers = request('OPTIONS', '/orders', { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' });
    const answer = await exchange.ask(requestHeaders({ headers, endOfStream: true }));
    expect(answer.response).toBe('immediate_response');
    const reply = answer.immediate_response!;
    expect(reply.status.code).toBe('NoContent');
    expect(setHeaders(reply.headers)).toMatchObject({
      'access-control-allow-origin': [ORIGIN],
      'access-control-allow-methods': [expect.stringContaining('POST')],
      'access-control-allow-headers': [expect.stringContaining('x-api-key')],
    });
    await exchange.end();
  });

  it('asks for the whole request body when validate must read it, and rejects a body with an injected field', async () => {
    const exchange = new Exchange(server!.client);
    const headers = request('POST', '/orders', { 'x-api-key': key, 'content-type': 'application/json' });
    const onHeaders = await exchange.ask(requestHeaders({ headers, endOfStream: false }));
    expect(onHeaders.response).toBe('request_headers');
    expect(onHeaders.mode_override).toMatchObject({ request_body_mode: 'BUFFERED' });
    const reply = immediate(await exchange.ask(requestBody('{"item":"widget","quantity":1,"admin":true}')));
    expect(reply.status).toBe('BadRequest');
    expect(reply.body).toMatchObject({ error: 'bad_request', errors: [expect.objectContaining({ in: 'body' })] });
    expect(JSON.stringify(reply.body)).toContain('admin');
    expect(await exchange.end()).toMatchObject({ code: 0 });
  });

  it('lets a valid body through, the changes in the answer to request_body', async () => {
    const exchange = new Exchange(server!.client);
    const headers = request('POST', '/orders', { 'x-api-key': key, 'content-type': 'application/json' });
    expect((await exchange.ask(requestHeaders({ headers }))).mode_override).toMatchObject({ request_body_mode: 'BUFFERED' });
    const answer = await exchange.ask(requestBody('{"item":"widget","quantity":2}'));
    expect(answer.response).toBe('request_body');
    const common = answer.request_body!.response!;
    expect(setHeaders(common.header_mutation)['x-gateway']).toEqual(['meshward']);
    expect(common.body_mutation).toBeUndefined();
    await exchange.end();
  });

  it('refuses a body larger than validate reads with 413', async () => {
    const exchange = new Exchange(server!.client);
    await exchange.ask(requestHeaders({ headers: request('POST', '/orders', { 'x-api-key': key, 'content-type': 'application/json' }) }));
    const reply = immediate(await exchange.ask(requestBody(`{"item":"${'x'.repeat(1024 * 1024)}"}`)));
    expect(reply.status).toBe('PayloadTooLarge');
    await exchange.end();
  });

  it('masks a JSON response: asks for its whole body, and answers with the masked body and its content-length', async () => {
    const exchange = new Exchange(server!.client);
    await exchange.ask(requestHeaders({ headers: request('GET', '/orders/7', { 'x-api-key': key }), endOfStream: true }));
    const original = '{"id":7,"card":"4111111111111111","owner":{"ssn":"123-45-6789"}}';
    const onHeaders = await exchange.ask(
      responseHeaders({ headers: { ':status': '200', 'content-type': 'application/json', 'content-length': String(original.length) }, endOfStream: false }),
    );
    expect(onHeaders.response).toBe('response_headers');
    expect(onHeaders.mode_override).toMatchObject({ response_body_mode: 'BUFFERED' });
    const answer = await exchange.ask(responseBody(original));
    expect(answer.response).toBe('response_body');
    const common = answer.response_body!.response!;
    const masked = common.body_mutation!.body!.toString();
    expect(JSON.parse(masked)).toEqual({ id: 7, card: '***1111', owner: { ssn: '***' } });
    const changed = setHeaders(common.header_mutation);
    expect(changed['content-length']).toEqual([String(Buffer.byteLength(masked))]);
    expect(changed['x-served-by']).toEqual(['meshward']);
    expect(common.header_mutation!.remove_headers).toContain('content-length');
    expect(await exchange.end()).toMatchObject({ code: 0 });
  });

  it('answers a JSON response that is not JSON with 502 from the mask filter, as an immediate response', async () => {
    const exchange = new Exchange(server!.client);
    await exchange.ask(requestHeaders({ headers: request('GET', '/orders/7', { 'x-api-key': key }), endOfStream: true }));
    await exchange.ask(responseHeaders({ headers: { ':status': '200', 'content-type': 'application/json' } }));
    const reply = immediate(await exchange.ask(responseBody('{"card": 4111')));
    expect(reply.status).toBe('BadGateway');
    expect(reply.body).toMatchObject({ error: 'bad_gateway', requestId: 'req-1' });
    // Nothing of the app's answer goes out with it (the filters before mask add theirs: CORS's vary).
    expect(reply.headers).toEqual({ 'content-type': ['application/json'], vary: ['Origin'] });
    await exchange.end();
  });

  it('answers a response_headers that comes first (a local reply Envoy made before the filter ran) unchanged', async () => {
    const exchange = new Exchange(server!.client);
    const answer = await exchange.ask(responseHeaders({ headers: { ':status': '503', 'content-type': 'text/plain' }, endOfStream: false }));
    expect(answer).toMatchObject({ response: 'response_headers' });
    expect(answer.response_headers!.response).toBeUndefined();
    expect(await exchange.end()).toMatchObject({ code: 0 });
  });

  it('takes a key created while it runs: the apiKey filter keeps its file in force', async () => {
    const created = await runCli(['apikey', 'create', '--name', 'reports', '--file', join(dir, 'keys.yaml')]);
    expect(created.code).toBe(0);
    const ask = async () => {
      const exchange = new Exchange(server!.client);
      const answer = await exchange.ask(requestHeaders({ headers: request('GET', '/orders/latest', { 'x-api-key': created.stdout.trim() }), endOfStream: true }));
      await exchange.end();
      return answer.response;
    };
    await waitFor('the new key to be accepted', ask, (response) => response === 'request_headers');
  });

  it('ends a stream whose messages come out of order with INVALID_ARGUMENT', async () => {
    const bodyFirst = new Exchange(server!.client);
    await expect(bodyFirst.ask(requestBody('{}'))).rejects.toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringContaining('request_body came out of order: expected request_headers') });

    const twice = new Exchange(server!.client);
    await twice.ask(requestHeaders({ headers: request('GET', '/orders/latest', { 'x-api-key': key }), endOfStream: true }));
    await expect(twice.ask(requestHeaders({ headers: request('GET', '/orders/latest', { 'x-api-key': key }), endOfStream: true }))).rejects.toMatchObject({
      code: INVALID_ARGUMENT,
      details: expect.stringContaining('request_headers came out of order'),
    });

    const afterReply = new Exchange(server!.client);
    immediate(await afterReply.ask(requestHeaders({ headers: request('GET', '/orders'), endOfStream: true })));
    await expect(afterReply.ask(responseHeaders({ headers: { ':status': '200' } }))).rejects.toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringContaining('the exchange is over') });

    const empty = new Exchange(server!.client);
    await expect(empty.ask({})).rejects.toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringContaining('carries none of request_headers') });

    const noMethod = new Exchange(server!.client);
    await expect(noMethod.ask(requestHeaders({ headers: { ':path': '/orders' } }))).rejects.toMatchObject({ code: INVALID_ARGUMENT, details: 'request_headers has no :method' });
  });
});

describe('meshward extproc: who called, from the attributes Envoy sends', () => {
  const { dir, cleanup } = tempDir('meshward-extproc-identity-');
  let server: Running | undefined;

  beforeAll(async () => {
    const policy = resolve(REPO_ROOT, 'test/fixtures/authz/policy.yaml');
    writeFileSync(join(dir, 'extproc.yaml'), ['filters:', '  - ipList: { deny: [10.0.0.0/8] }', `  - authz: { policy: ${JSON.stringify(policy)} }`, ''].join('\n'));
    server = await startExtProc(join(dir, 'extproc.yaml'), ['--admin', '127.0.0.1:0']);
  });
  afterAll(async () => {
    await stop(server);
    cleanup();
  });

  const ask = async (path: string, attributes?: Record<string, string | number>, headers: Record<string, string> = {}) => {
    const exchange = new Exchange(server!.client);
    const answer = await exchange.ask(requestHeaders({ headers: request('GET', path, headers), endOfStream: true, ...(attributes ? { attributes } : {}) }));
    expect(await exchange.end()).toMatchObject({ code: 0 });
    return answer;
  };

  it('takes the principal from the verified peer certificate\'s SPIFFE ID, and passes it on as x-meshward-principal', async () => {
    const answer = await ask('/api/orders/1', { 'source.address': '192.0.2.7:40312', 'connection.uri_san_peer_certificate': WEB });
    // No response side in this chain: Envoy is told not to send the response.
    expect(answer.mode_override).toMatchObject({ response_header_mode: 'SKIP' });
    const mutation = answer.request_headers!.response!.header_mutation!;
    expect(setHeaders(mutation)['x-meshward-principal']).toEqual([WEB]);
    expect(mutation.remove_headers).toContain('x-meshward-principal');
  });

  it('has no principal when the URI SAN is no SPIFFE ID, or when Envoy sends none: the policy denies', async () => {
    const without: Array<Record<string, string>> = [
      { 'source.address': '192.0.2.7:40312', 'connection.uri_san_peer_certificate': 'https://example.org/web' },
      { 'source.address': '[2001:db8::7]:40312' },
    ];
    for (const attributes of without) {
      const reply = immediate(await ask('/api/orders/1', attributes));
      expect(reply.status).toBe('Forbidden');
      expect(reply.body).toMatchObject({ rule: 'default' });
    }
  });

  it('takes the source address from source.address; without it, the ipList filter refuses the request', async () => {
    expect(immediate(await ask('/public/x', { 'source.address': '10.1.2.3:5555' })).body).toMatchObject({ reason: 'the client address is on a deny list' });
    expect(immediate(await ask('/public/x')).body).toMatchObject({ reason: 'the client address is unknown' });
    // X-Forwarded-For is anyone's to send: it is no source address.
    expect(immediate(await ask('/public/x', undefined, { 'x-forwarded-for': '192.0.2.7' })).body).toMatchObject({ reason: 'the client address is unknown' });
  });

  it('answers messages Envoy sends without waiting (streamed body chunks) in order, behind a decision that takes a promise', async () => {
    const messages = [
      requestHeaders({ headers: request('POST', '/public/upload'), endOfStream: false, attributes: { 'source.address': '192.0.2.7:40312' } }),
      ...['a', 'b', 'c'].map((chunk) => requestBody(chunk, false)),
      { request_trailers: { trailers: { headers: [] } } },
    ];
    // All in one write, and the stream half-closed at once: they arrive together, while the policy still decides.
    const session = connect(`http://${server!.address}`);
    try {
      const answer = await rawGrpcCall(session, PROCESS_PATH, framed(messages));
      expect(answer.grpcStatus).toBe(0);
      expect(unframed(answer.body).map((a) => a.response)).toEqual(['request_headers', 'request_body', 'request_body', 'request_body', 'request_trailers']);
    } finally {
      session.close();
    }
  });

  it('counts each request in meshward_requests_total{direction="extproc"} on the admin listener', async () => {
    const { admin } = JSON.parse(LISTENING.exec(server!.output())![0]) as { admin: string };
    await ask('/api/orders/1', { 'source.address': '192.0.2.7:40312', 'connection.uri_san_peer_certificate': WEB });
    await ask('/public/x', { 'source.address': '10.1.2.3:5555' });
    const metrics = await waitFor('the deny to be counted', async () => (await fetch(`http://${admin}/metrics`)).text(), (text) => text.includes('status="403"'));
    expect(metrics).toMatch(/meshward_requests_total\{direction="extproc",decision="deny",status="403"\} [1-9]/);
    expect(metrics).toMatch(/meshward_authz_decisions_total\{outcome="allow",rule="web-reads-orders"\} [1-9]/);
  });

  it('removes a forged x-meshward-principal when the caller has no identity', async () => {
    const answer = await ask('/public/x', { 'source.address': '192.0.2.7:40312' }, { 'x-meshward-principal': WEB });
    const mutation = answer.request_headers!.response!.header_mutation!;
    expect(mutation.remove_headers).toContain('x-meshward-principal');
    expect(setHeaders(mutation)['x-meshward-principal']).toBeUndefined();
  });
});

describe('meshward extproc: config and transport', () => {
  it('refuses an invalid config naming the file, the path and the reason', async () => {
    const { dir, cleanup } = tempDir('meshward-extproc-config-');
    try {
      const file = join(dir, 'extproc.yaml');
      writeFileSync(file, 'filters:\n  - cors: { allowOrigins: [] }\n  - nosuch: {}\nlimits: { requestTimeout: 5s }\n');
      let r = await runCli(['extproc', '--config', file, '--listen', '127.0.0.1:0']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}: limits: unknown field "requestTimeout"`);
      writeFileSync(file, 'filters:\n  - cors: { allowOrigins: [] }\n  - nosuch: {}\n');
      r = await runCli(['extproc', '--config', file, '--check-config']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}: filters[0].cors.allowOrigins:`);
      expect(r.stderr).toContain(`${file}: filters[1].nosuch: no built-in filter is named "nosuch"`);
      writeFileSync(file, 'filters:\n  - headers: { securityHeaders: true }\n');
      r = await runCli(['extproc', '--config', file, '--check-config']);
      expect([r.code, r.stdout]).toEqual([0, `${file}: OK; headerChecks → limits → headers\n`]);
    } finally {
      cleanup();
    }
  });

  it('serves mutual TLS with the TLS flags: clients with a certificate from the CA only', async () => {
    const { dir, cleanup } = tempDir('meshward-extproc-mtls-');
    const certs = makeTestCerts(dir);
    const server = await startExtProc('deploy/envoy/extproc.yaml', ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.caCert]);
    const ca = readFileSync(certs.caCert);
    // grpc-js sends the target's host as the TLS server name, which Node.js 26 refuses for an IP: name it by its DNS SAN.
    const byName = { 'grpc.ssl_target_name_override': 'localhost' };
    const trusted = externalProcessorClient(server.address, credentials.createSsl(ca, readFileSync(certs.clientKey), readFileSync(certs.clientCert)), byName);
    const stranger = externalProcessorClient(server.address, credentials.createSsl(ca, readFileSync(certs.strangerKey), readFileSync(certs.strangerCert)), byName);
    try {
      expect((await new Exchange(trusted).ask(requestHeaders({ headers: request('GET', '/'), endOfStream: true }))).response).toBe('request_headers');
      for (const client of [stranger, server.client]) {
        await expect(new Exchange(client).ask(requestHeaders({ headers: request('GET', '/'), endOfStream: true }))).rejects.toMatchObject({ code: 14 });
      }
    } finally {
      trusted.close();
      stranger.close();
      await stop(server);
      cleanup();
    }
  });

  it('serves without TLS only on loopback, unless told --insecure-plaintext', async () => {
    const r = await runCli(['extproc', '--config', 'deploy/envoy/extproc.yaml', '--listen', '0.0.0.0:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to serve ext_proc without TLS on 0.0.0.0, which is not a loopback address');
  });
});

describe("meshward's ext_proc protos are Envoy's", () => {
  it('every field of every message meshward reads or writes has the official number, type and cardinality', () => {
    const official = officialProtoRoot();
    official.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true });
    official.resolveAll();
    const ours = new protobuf.Root();
    ours.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(REPO_ROOT, 'proto', target));
    ours.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true });
    ours.resolveAll();
    const seen = new Set<string>();
    const compare = (type: protobuf.Type) => {
      if (seen.has(type.fullName) || type.fullName.startsWith('.google.')) return;
      seen.add(type.fullName);
      const theirs = official.lookupType(type.fullName);
      for (const field of type.fieldsArray) {
        const match = theirs.fields[field.name];
        expect(match, `${type.fullName}.${field.name}`).toBeDefined();
        expect([match!.id, match!.resolvedType?.fullName ?? match!.type, match!.repeated, match!.map, match!.partOf?.name], `${type.fullName}.${field.name}`).toEqual([
          field.id,
          field.resolvedType?.fullName ?? field.type,
          field.repeated,
          field.map,
          field.partOf?.name,
        ]);
        if (field.resolvedType instanceof protobuf.Type) compare(field.resolvedType);
        if (field.resolvedType instanceof protobuf.Enum) {
          const values = (official.lookup(field.resolvedType.fullName) as protobuf.Enum).values;
          expect(Object.entries(field.resolvedType.values).every(([name, id]) => values[name] === id), field.resolvedType.fullName).toBe(true);
        }
      }
    };
    compare(ours.lookupType('envoy.service.ext_proc.v3.ProcessingRequest'));
    compare(ours.lookupType('envoy.service.ext_proc.v3.ProcessingResponse'));
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe('deploy/envoy/envoy-extproc.yaml: Envoy with meshward extproc, then meshward authz', () => {
  type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const read = (file: string) => parse(readFileSync(join(REPO_ROOT, 'deploy/envoy', file), 'utf8'), { uniqueKeys: true }) as Obj;
  const envoy = read('envoy-extproc.yaml');
  const filtersOf = (config: Obj) => config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters as Obj[];
  const extProc = filtersOf(envoy)[0]!;

  it('runs ext_proc first, then ext_authz exactly as envoy.yaml has it, then the router', () => {
    expect(filtersOf(envoy).map((f) => f.name)).toEqual(['envoy.filters.http.ext_proc', 'envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
    expect(filtersOf(envoy)[1]).toEqual(filtersOf(read('envoy.yaml'))[0]);
  });

  it('fails closed, lets meshward ask for bodies, and sends the attributes meshward reads', () => {
    const config = extProc.typed_config as Obj;
    expect(config).toMatchObject({ failure_mode_allow: false, allow_mode_override: true, processing_mode: { request_header_mode: 'SEND', request_body_mode: 'NONE' } });
    expect(config.request_attributes).toEqual([...REQUEST_ATTRIBUTES]);
    const cluster = (envoy.static_resources.clusters as Obj[]).find((c) => c.name === config.grpc_service.envoy_grpc.cluster_name)!;
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toEqual({ http2_protocol_options: {} });
  });

  it('extproc.yaml beside it is a config meshward extproc takes', async () => {
    const r = await runCli(['extproc', '--config', 'deploy/envoy/extproc.yaml', '--check-config']);
    expect([r.code, r.stdout]).toEqual([0, 'deploy/envoy/extproc.yaml: OK; headerChecks → limits → headers → mask\n']);
  });

  it('README\'s "Filters for Envoy: ext_proc" shows these files as they are', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Filters for Envoy: ext_proc'));
    const [config, filter] = [...section.matchAll(/```yaml\n([\s\S]+?)```/g)].map((m) => parse(m[1]!) as Obj);
    expect(config).toEqual(read('extproc.yaml'));
    expect(envoyConfigProblems(filter, 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter')).toEqual([]);
    expect(filter).toEqual(extProc);
  });
});

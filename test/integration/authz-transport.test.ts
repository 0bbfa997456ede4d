// The ext_authz server's gRPC transport on real sockets, driven by a raw HTTP/2 client so that every
// protocol edge (framing, compression, size, content-type, deadline, shutdown) can be sent on purpose.
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyEngine } from '../../src/authz/index.js';
import { startExtAuthzServer, type ExtAuthzServer } from '../../src/authz/ext-authz/index.js';
import { frameMessage } from '../../src/grpc/grpc-framing.js';
import { loadCheckTypes } from '../../src/authz/ext-authz/protos.js';
import { tempDir } from '../helpers/cli.js';
import { rawGrpcCall, type RawResponse } from '../helpers/raw-grpc.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const WEB = 'spiffe://example.org/ns/default/sa/web';
const types = loadCheckTypes();

const checkRequest = (path = '/api/orders') =>
  frameMessage(
    types.CheckRequest.encode(
      types.CheckRequest.fromObject({ attributes: { source: { principal: WEB }, request: { http: { id: 'r1', method: 'GET', path, host: 'orders' } } } }),
    ).finish(),
  );

function call(session: ClientHttp2Session, body: Buffer | Buffer[], headers: OutgoingHttpHeaders = {}): Promise<RawResponse> {
  return rawGrpcCall(session, CHECK, body, headers);
}

function decodeCheckResponse(body: Buffer): { status: { code: number }; deniedResponse?: { status: { code: number }; body: string } } {
  return types.CheckResponse.toObject(types.CheckResponse.decode(body.subarray(5))) as ReturnType<typeof decodeCheckResponse>;
}

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** An engine that answers as told, so that a test controls timing and failure. */
function stubEngine(decide: PolicyEngine['decide']) {
  return () => ({ engine: { decide }, explainDenials: true });
}

const allowAll = stubEngine(async (req) => ({ kind: 'allow', rule: 'stub', principal: req.principal }));

const open: { server: ExtAuthzServer; session: ClientHttp2Session; cleanup: () => void }[] = [];
afterEach(async () => {
  for (const { server, session, cleanup } of open.splice(0)) {
    session.destroy();
    await server.close(100);
    cleanup();
  }
});

async function start(loadPolicy = allowAll, maxMessageBytes?: number) {
  const { dir, cleanup } = tempDir('meshward-authz-transport-');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, 'defaultAction: deny\n');
  const { logger, lines } = memoryLogger();
  const server = await startExtAuthzServer({ policyFile, loadPolicy, host: '127.0.0.1', port: 0, logger, ...(maxMessageBytes ? { maxMessageBytes } : {}) });
  const session = connect(`http://${server.address}`);
  open.push({ server, session, cleanup });
  await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
  return { server, session, lines };
}

describe('ext_authz gRPC transport', () => {
  it('answers a Check with a message and grpc-status 0 in the trailers', async () => {
    const { session } = await start();
    const r = await call(session, checkRequest());
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(r.grpcStatus).toBe(0);
    expect(decodeCheckResponse(r.body).status.code).toBe(0);
  });

  it('denies bytes that are not a CheckRequest (fail closed) as a CheckResponse, and logs why', async () => {
    const { session, lines } = await start();
    const r = await call(session, frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(r.grpcStatus).toBe(0);
    const response = decodeCheckResponse(r.body);
    expect(response.status.code).toBe(3);
    expect(response.deniedResponse!.status.code).toBe(400);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'malformed CheckRequest denied', reason: expect.stringContaining('does not decode') }));
  });

  it('denies when the engine fails, although engines promise not to', async () => {
    const { session, lines } = await start(stubEngine(() => Promise.reject(new Error('boom'))));
    const response = decodeCheckResponse((await call(session, checkRequest())).body);
    expect(response.status.code).toBe(7);
    expect(JSON.parse(response.deniedResponse!.body)).toMatchObject({ error: 'forbidden', rule: 'error' });
    expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: 'policy engine failed; denied' }));
  });

  it('refuses a compressed message (INTERNAL) and an unsupported grpc-encoding (UNIMPLEMENTED)', async () => {
    const { session } = await start();
    const compressed = checkRequest();
    compressed[0] = 1;
    expect((await call(session, compressed)).grpcStatus).toBe(13);
    const gzip = await call(session, checkRequest(), { 'grpc-encoding': 'gzip' });
    expect(gzip.grpcStatus).toBe(12);
    expect(gzip.headers['grpc-accept-encoding']).toBe('identity');
  });

  it('refuses a message over the size limit with RESOURCE_EXHAUSTED', async () => {
    const { session } = await start(allowAll, 1024);
    const r = await call(session, frameMessage(Buffer.alloc(64 * 1024, 1)));
    expect(r.grpcStatus).toBe(8);
    expect(decodeURIComponent(String(r.headers['grpc-message'] ?? r.trailers['grpc-message']))).toContain('larger than max');
  });

  it('refuses a body that ends inside a message, holds two or none, with INVALID_ARGUMENT and the reason', async () => {
    const { session } = await start();
    expect(await call(session, checkRequest().subarray(0, 8))).toMatchObject({ grpcStatus: 3, grpcMessage: 'request ended inside a message' });
    expect(await call(session, [checkRequest(), checkRequest()])).toMatchObject({ grpcStatus: 3, grpcMessage: 'more than one request message for a unary method' });
    expect(await call(session, Buffer.alloc(0))).toMatchObject({ grpcStatus: 3, grpcMessage: 'request has no message' });
  });

  it('refuses a Health request that does not decode with INVALID_ARGUMENT and the reason', async () => {
    const { session } = await start();
    // A tag with wire type 7, which protobuf does not have.
    const r = await rawGrpcCall(session, '/grpc.health.v1.Health/Check', frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(r.grpcStatus).toBe(3);
    expect(r.grpcMessage).toMatch(/^the request does not decode: .+/);
  });

  it('answers what is not gRPC with plain HTTP errors, and an unknown method with UNIMPLEMENTED', async () => {
    const { session } = await start();
    expect((await call(session, checkRequest(), { 'content-type': 'application/json' })).headers[':status']).toBe(415);
    expect((await call(session, checkRequest(), { ':method': 'PUT' })).headers[':status']).toBe(405);
    expect((await call(session, checkRequest(), { ':path': '/envoy.service.auth.v3.Authorization/Nope' })).grpcStatus).toBe(12);
  });

  it('answers DEADLINE_EXCEEDED when the decision outlives grpc-timeout', async () => {
    const { session } = await start(stubEngine(() => new Promise(() => {})));
    const started = Date.now();
    const r = await call(session, checkRequest(), { 'grpc-timeout': '100m' });
    expect(r.grpcStatus).toBe(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect((await call(session, checkRequest(), { 'grpc-timeout': 'soon' })).grpcStatus).toBe(13);
  });

  it('keeps serving after every kind of bad input, on the same connection, with many calls in flight', async () => {
    const { session } = await start();
    const compressed = checkRequest();
    compressed[0] = 1;
    await Promise.all([call(session, compressed), call(session, Buffer.from('garbage')), call(session, checkRequest(), { ':method': 'PUT' })]);
    const results = await Promise.all(Array.from({ length: 200 }, () => call(session, checkRequest())));
    expect(results.every((r) => r.grpcStatus === 0 && decodeCheckResponse(r.body).status.code === 0)).toBe(true);
  });

  it('shuts down gracefully: a call in flight completes, new connections are refused', async () => {
    let release: () => void = () => {};
    let deciding: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const decided = new Promise<void>((resolve) => (deciding = resolve));
    const { server, session } = await start(stubEngine(async () => (deciding(), await gate, { kind: 'allow', rule: 'stub' })));
    const inFlight = call(session, checkRequest());
    await decided;
    const closing = server.close(5_000);
    release();
    expect((await inFlight).grpcStatus).toBe(0);
    await closing;
    const late = connect(`http://${server.address}`);
    await expect(new Promise((_resolve, reject) => late.once('error', reject))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('closes what is left after the grace period', async () => {
    let deciding: () => void = () => {};
    const decided = new Promise<void>((resolve) => (deciding = resolve));
    const { server, session } = await start(stubEngine(() => (deciding(), new Promise(() => {}))));
    const stuck = call(session, checkRequest()).catch((err: Error) => err);
    await decided;
    const started = Date.now();
    await server.close(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    const outcome = await stuck;
    expect(outcome instanceof Error || (outcome as RawResponse).grpcStatus !== 0).toBe(true);
  });

  it('serves a Health Watch stream, which hears NOT_SERVING when the server shuts down', async () => {
    const { server } = await start();
    const { Health } = (loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: ServiceClientConstructor } } };
    }).grpc.health.v1;
    const client = new Health(server.address, credentials.createInsecure());
    const watch = (client as unknown as { Watch: (req: unknown) => NodeJS.ReadableStream & { cancel(): void } }).Watch({ service: '' });
    const statuses: string[] = [];
    let onStatus = () => {};
    watch.on('data', (m: { status: string }) => (statuses.push(m.status), onStatus()));
    watch.on('error', () => {});
    const heard = (status: string) =>
      new Promise<void>((resolve) => {
        onStatus = () => statuses.includes(status) && resolve();
        onStatus();
      });
    await heard('SERVING');
    const notServing = heard('NOT_SERVING');
    const closing = server.close(300);
    await notServing;
    await closing;
    client.close();
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

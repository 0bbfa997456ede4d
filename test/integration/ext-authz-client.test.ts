// The sidecar's ext_authz client against the real ext_authz server on real sockets: verdicts, a server that is
// gone, one that never answers, and recovery when a server comes back on the same port.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthzRequest } from '../../src/authz/index.js';
import { createExtAuthzClient, startExtAuthzServer, type ExtAuthzClient } from '../../src/authz/ext-authz/index.js';
import { frameMessage } from '../../src/grpc/grpc-framing.js';
import { REPO_ROOT, tempDir } from '../helpers/cli.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
/**
 * The client's deadline. Generous where the test is about a verdict: a first Check on a loaded machine (connect,
 * HTTP/2 settings, the server's first decision) took over 200 ms once and failed for it. Short only in the test
 * of a server that never answers, which waits it out.
 */
const TIMEOUT_MS = 2_000;
const NEVER_ANSWERS_TIMEOUT_MS = 200;
/** Generous: the point is that a failing Check resolves as an error, not how fast. */
const RESOLVES_WITHIN_MS = 5_000;
const silent = pino({ level: 'silent' });

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The real server on the fixture policy; `stop` may be called by a test and again by the cleanup. */
async function startServer(port = 0): Promise<{ address: string; stop: () => Promise<void> }> {
  const { dir, cleanup } = tempDir('meshward-ext-authz-client-');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, readFileSync(resolve(REPO_ROOT, 'test/fixtures/authz/policy.yaml')));
  const server = await startExtAuthzServer({ policyFile, host: '127.0.0.1', port, logger: silent });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= server.close(100));
  cleanups.push(async () => {
    await stop();
    cleanup();
  });
  return { address: server.address, stop };
}

async function client(address: string, logger = silent, timeoutMs = TIMEOUT_MS): Promise<ExtAuthzClient> {
  const created = await createExtAuthzClient({ address, timeoutMs, logger });
  cleanups.push(() => created.close());
  return created;
}

/** A raw HTTP/2 server that does with each stream what `onStream` says: what a broken ext_authz server would. */
async function rawHttp2Server(onStream: (stream: ServerHttp2Stream) => void): Promise<string> {
  const server: Http2Server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', onStream);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  cleanups.push(
    () =>
      new Promise<void>((done) => {
        for (const session of sessions) session.destroy();
        server.close(() => done());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const request = (path: string, principal: string | undefined = WEB): AuthzRequest => ({
  ...(principal ? { principal } : {}),
  sourceIp: '10.0.0.7',
  method: 'GET',
  host: 'orders',
  path,
  headers: { 'x-meshward-principal': 'spiffe://example.org/forged' },
  requestId: 'req-1',
});

/** Resolves with the Check's verdict, or fails the test if it does not resolve in time. */
async function settles<T>(check: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the Check did not resolve within ${RESOLVES_WITHIN_MS} ms`)), RESOLVES_WITHIN_MS);
  });
  try {
    return await Promise.race([check, late]);
  } finally {
    clearTimeout(timer);
  }
}

function memoryLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('ext_authz client against the real server', () => {
  it('allows, passing the principal on in x-meshward-principal', async () => {
    const authz = await client((await startServer()).address);
    expect(await authz.check(request('/api/orders/1'), { scheme: 'https', protocol: 'HTTP/1.1' })).toEqual({
      kind: 'allow',
      setHeaders: [['x-meshward-principal', WEB]],
      removeHeaders: [],
    });
  });

  it('denies by rule: 403, the rule in x-meshward-denied-by and in the JSON body', async () => {
    const authz = await client((await startServer()).address);
    const verdict = await authz.check(request('/admin/users'));
    if (verdict.kind !== 'deny') throw new Error(`expected a denial, got ${JSON.stringify(verdict)}`);
    expect(verdict.httpStatus).toBe(403);
    expect(verdict.headers).toContainEqual(['x-meshward-denied-by', 'block-admin']);
    expect(JSON.parse(verdict.body)).toEqual({ error: 'forbidden', rule: 'block-admin', requestId: 'req-1' });
  });

  it('answers a rate-limited request with 429 and retry-after', async () => {
    const authz = await client((await startServer()).address);
    expect(await authz.check(request('/public/slow'))).toMatchObject({ kind: 'allow' });
    const verdict = await authz.check(request('/public/slow'));
    expect(verdict).toMatchObject({ kind: 'deny', httpStatus: 429 });
    expect(verdict.kind === 'deny' && verdict.headers.find(([name]) => name === 'retry-after')?.[1]).toMatch(/^\d+$/);
  });

  it('answers a path that cannot be judged with 400', async () => {
    const authz = await client((await startServer()).address);
    const verdict = await authz.check(request('/api/orders%2F..%2Fadmin'));
    expect(verdict).toMatchObject({ kind: 'deny', httpStatus: 400 });
    expect(JSON.parse(verdict.kind === 'deny' ? verdict.body : '{}')).toMatchObject({ error: 'bad_request' });
  });

  it('returns an error, not a hang, once the server is gone', async () => {
    const server = await startServer();
    const authz = await client(server.address);
    expect(await authz.check(request('/api/orders'))).toMatchObject({ kind: 'allow' });
    await server.stop();
    expect(await settles(authz.check(request('/api/orders')))).toEqual({ kind: 'error', reason: expect.stringContaining(server.address) });
  });

  it('returns an error when nothing ever listened', async () => {
    const server = await startServer();
    const address = server.address;
    await server.stop();
    const authz = await client(address);
    expect(await settles(authz.check(request('/api/orders')))).toEqual({ kind: 'error', reason: expect.stringContaining('UNAVAILABLE') });
  });

  it('returns an error at the deadline when the server takes the call and never answers', async () => {
    const authz = await client(await rawHttp2Server(() => {}), silent, NEVER_ANSWERS_TIMEOUT_MS);
    expect(await settles(authz.check(request('/api/orders')))).toEqual({ kind: 'error', reason: expect.stringContaining('DEADLINE_EXCEEDED') });
  });

  it('returns an error when the answer is not a CheckResponse', async () => {
    const address = await rawHttp2Server((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frameMessage(Buffer.from([0xff, 0xff, 0xff])));
    });
    const authz = await client(address);
    expect(await settles(authz.check(request('/api/orders')))).toEqual({ kind: 'error', reason: expect.stringContaining('parsing') });
  });

  it('recovers by itself when a server comes back on the same port, logging the outage once', async () => {
    const first = await startServer();
    const port = Number(first.address.slice(first.address.lastIndexOf(':') + 1));
    const { logger, lines } = memoryLogger();
    const authz = await client(first.address, logger);
    expect(await authz.check(request('/api/orders'))).toMatchObject({ kind: 'allow' });

    await first.stop();
    expect(await settles(authz.check(request('/api/orders')))).toMatchObject({ kind: 'error' });
    expect(await settles(authz.check(request('/api/orders')))).toMatchObject({ kind: 'error' });

    await startServer(port);
    let verdict = await authz.check(request('/api/orders'));
    for (let attempt = 0; verdict.kind === 'error' && attempt < 100; attempt++) {
      await new Promise((retry) => setTimeout(retry, 50));
      verdict = await authz.check(request('/api/orders'));
    }
    expect(verdict).toMatchObject({ kind: 'allow' });
    expect(lines.map(({ msg }) => msg)).toEqual([
      'ext_authz check failed; further failures are not logged until a check succeeds',
      'ext_authz server answering again',
    ]);
  });

  it('returns an error after close', async () => {
    const authz = await client((await startServer()).address);
    authz.close();
    expect(await authz.check(request('/api/orders'))).toEqual({ kind: 'error', reason: expect.stringContaining('closed') });
  });
});

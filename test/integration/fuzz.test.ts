// Issue 5: a few thousand random and mutated requests, paths, headers and gRPC frames against the real sidecar
// and ext_authz processes. An answer may be any status or a closed connection; what must hold is that nothing
// crashes, nothing escapes an error handler, nothing hangs, memory stays bounded and normal traffic still works.
// Every input comes from one seed: MESHWARD_FUZZ_SEED=<seed> replays a run.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckTypes } from '../../src/authz/ext-authz/protos.js';
import { frameMessage } from '../../src/grpc/grpc-framing.js';
import { REPO_ROOT, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { ESCAPED_ERROR, fuzzSeed, randomHttpInput, randomPath, Rng, rssBytes, type HttpInput } from '../helpers/fuzz.js';
import { httpRequest, makeMesh, runPair, WEB_ID, type RunningSidecar } from '../helpers/sidecar.js';

const SEED = fuzzSeed();
const MAX_HEADER_BYTES = 16384;
const MiB = 1024 * 1024;

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** Memory bounded: generous, since a GC may simply not have run yet. */
function expectRssBounded(name: string, before: number, after: number): void {
  expect(after, `${name} RSS ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB (seed ${SEED})`).toBeLessThan(2 * before + 50 * MiB);
}

function expectAliveAndClean(name: string, child: ChildProcess, output: string): void {
  expect(child.exitCode, `${name} exited (seed ${SEED}): ${output.slice(-4000)}`).toBeNull();
  expect(child.signalCode).toBeNull();
  const escaped = output.split('\n').filter((l) => ESCAPED_ERROR.test(l));
  expect(escaped.slice(0, 5), `${name} (seed ${SEED})`).toEqual([]);
}

/** Runs `worker` on `count` parallel lanes until `inputs` is drained. */
async function drain<T>(inputs: T[], lanes: number, worker: (input: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < inputs.length) {
        const index = next++;
        await worker(inputs[index]!, index);
      }
    }),
  );
}

/**
 * Bytes on a socket until the first whole HTTP/1.1 response, a close, or `waitMs`: the status seen (0 for none), and
 * whether the socket can carry another request.
 */
function exchange(socket: net.Socket, bytes: Buffer, waitMs: number, reusable: boolean): Promise<{ status: number; keep: boolean }> {
  return new Promise((resolvePromise) => {
    let status = 0;
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (keep: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolvePromise({ status, keep: keep && !socket.destroyed });
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1');
      status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!reusable || /\r\nconnection:\s*close/i.test(head) || !length) return finish(false);
      if (buf.length >= end + 4 + Number(length[1])) finish(true);
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(bytes, () => undefined);
  });
}

describe(`fuzz: the sidecar (seed ${SEED})`, () => {
  const { dir, cleanup } = tempDir();
  let app: http.Server;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  let client: { cert: Buffer; key: Buffer; ca: Buffer };
  const seenPrincipals: Array<string | undefined> = [];
  const seenXfcc: Array<string | undefined> = [];
  const appSockets = new Set<net.Socket>();

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      seenPrincipals.push(req.headers['x-meshward-principal'] as string | undefined);
      seenXfcc.push(req.headers['x-forwarded-client-cert'] as string | undefined);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    app.on('connection', (s: net.Socket) => {
      appSockets.add(s);
      s.once('close', () => appSockets.delete(s));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      inboundExtra: { limits: { maxHeaderBytes: MAX_HEADER_BYTES, headersTimeout: '2s', requestTimeout: '3s', handshakeTimeout: '2s' } },
    }));
    client = { cert: readFileSync(join(dir, 'web.pem')), key: readFileSync(join(dir, 'web.key')), ca: readFileSync(mesh.bundle) };
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    for (const s of appSockets) s.destroy();
    app?.close();
    cleanup();
  });

  const connectInbound = (h2 = false) =>
    tls.connect({ ...splitAddress(orders.inbound!), ...client, servername: 'localhost', ALPNProtocols: h2 ? ['h2'] : ['http/1.1'] });
  const connectOutbound = () => net.connect(splitAddress(web.outbound!));

  async function normalThroughWeb(): Promise<void> {
    const before = seenPrincipals.length;
    const res = await httpRequest(web.outbound!, '/api/orders/1?fuzz=normal', { headers: { host: 'orders', 'x-meshward-principal': 'spiffe://evil/x' } });
    expect(res.status, res.body).toBe(200);
    expect(res.body).toBe('ok');
    expect(seenPrincipals.slice(before)).toEqual([WEB_ID]);
    expect(seenXfcc.at(-1)).toContain(`URI=${WEB_ID}`);
  }

  it('survives ~2,000 hostile inputs on mTLS inbound and plain outbound connections', async () => {
    await normalThroughWeb();
    const rssBefore = { orders: rssBytes(orders.child.pid!), web: rssBytes(web.child.pid!) };
    const rng = new Rng(SEED);
    type Job = { input: HttpInput; target: 'inbound' | 'outbound'; index: number };
    const jobs: Job[] = Array.from({ length: 2000 }, (_, index) => {
      const one = rng.fork();
      const target = one.chance(0.7) ? 'inbound' : 'outbound';
      return { input: randomHttpInput(one, 'orders', MAX_HEADER_BYTES - 1024), target, index };
    });

    const started = performance.now();
    const outcomes = { reused: 0, fresh: 0 };
    const statuses: Record<number, number> = {};
    // The inputs sent just before a sidecar was first seen dead: the suspects to replay.
    const recent: string[] = [];
    let suspects: string[] | undefined;
    // One keep-alive connection per lane and target; a connection the server closed (or that an input broke) is replaced.
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        const kept: Partial<Record<Job['target'], net.Socket>> = {};
        for (let i = lane; i < jobs.length; i += 8) {
          const { input, target } = jobs[i]!;
          recent.push(`#${i} ${target}: ${JSON.stringify(input.bytes.toString('latin1').slice(0, 300))}`);
          if (recent.length > 16) recent.shift();
          if (suspects === undefined && (orders.child.exitCode !== null || web.child.exitCode !== null)) suspects = [...recent];
          let socket = input.h2 || !input.reusable ? undefined : kept[target];
          if (socket?.destroyed) socket = undefined;
          if (socket) outcomes.reused++;
          else {
            outcomes.fresh++;
            socket = target === 'inbound' ? connectInbound(input.h2) : connectOutbound();
            socket.on('error', () => undefined);
            const ready = target === 'inbound' ? 'secureConnect' : 'connect';
            const connected = await new Promise<boolean>((r) => {
              socket!.once(ready, () => r(true));
              socket!.once('close', () => r(false));
            });
            if (!connected) continue;
          }
          // A reusable request is answered at once; anything else may be waited on by the server, so the wait is short.
          const { status, keep } = await exchange(socket, input.bytes, input.reusable ? 3000 : 150, input.reusable);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (keep && input.reusable) kept[target] = socket;
          else {
            socket.destroy();
            if (kept[target] === socket) delete kept[target];
          }
        }
        for (const s of Object.values(kept)) s.destroy();
      }),
    );

    // Well-framed HTTP/2 streams with hostile contents, on the inbound (node:http2 refuses what it cannot encode).
    const h2rng = rng.fork();
    const h2Outcomes: Record<string, number> = {};
    const sessions: ClientHttp2Session[] = [];
    const h2Session = (lane: number) => {
      const s = sessions[lane];
      if (s && !s.closed && !s.destroyed) return s;
      const fresh = http2.connect(`https://${orders.inbound!}`, { ...client, servername: 'localhost' });
      fresh.on('error', () => undefined);
      sessions[lane] = fresh;
      return fresh;
    };
    const h2Inputs = Array.from({ length: 300 }, () => {
      const one = h2rng.fork();
      const headers: OutgoingHttpHeaders = {
        ':method': one.pick(['GET', 'POST', 'HEAD', 'PUT', 'OPTIONS', 'get', 'X'.repeat(one.int(1, 50))]),
        ':path': randomPath(one),
        ':authority': one.pick(['orders', '', 'evil', 'a'.repeat(500)]),
      };
      for (let i = one.int(0, 5); i > 0; i--) {
        headers[one.pick(['content-length', 'x-meshward-principal', 'x-forwarded-client-cert', 'cookie', 'x-request-id', 'grpc-timeout', 'content-type', one.string(one.int(1, 10), 'abcxyz-')])] =
          one.pick([String(one.int(0, 100)), 'spiffe://evil/x', 'application/grpc', one.string(one.int(0, MAX_HEADER_BYTES), 'abc'), '-1', '10737418240']);
      }
      return { headers, body: one.chance(0.5) ? one.bytes(one.int(0, 3000)) : undefined };
    });
    try {
      await drain(h2Inputs, 8, async ({ headers, body }, index) => {
        const outcome = await new Promise<string>((r) => {
          let stream: http2.ClientHttp2Stream;
          try {
            stream = h2Session(index % 2).request(headers, { endStream: body === undefined });
          } catch (err) {
            r(`refused by client: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
            return;
          }
          let status = 'none';
          const timer = setTimeout(() => {
            stream.close(http2.constants.NGHTTP2_CANCEL);
            r('timeout');
          }, 3000);
          stream.on('response', (h) => (status = String(h[':status'])));
          stream.on('data', () => undefined);
          stream.on('error', () => undefined);
          stream.on('close', () => {
            clearTimeout(timer);
            r(stream.rstCode ? `rst ${stream.rstCode}` : status);
          });
          if (body !== undefined) stream.end(body);
        });
        h2Outcomes[outcome] = (h2Outcomes[outcome] ?? 0) + 1;
      });
    } finally {
      for (const s of sessions) s?.destroy();
    }
    expect(h2Outcomes.timeout, `HTTP/2 streams with no answer in 3 s (seed ${SEED})`).toBeUndefined();
    const elapsed = performance.now() - started;
    console.log(`sidecar fuzz seed ${SEED}: 2300 inputs in ${elapsed.toFixed(0)} ms (${outcomes.fresh} fresh connections, ${outcomes.reused} reused); statuses ${JSON.stringify(statuses)}; ${seenPrincipals.length} reached the app; HTTP/2 ${JSON.stringify(h2Outcomes)}`);

    expect(suspects === undefined, `a sidecar died (seed ${SEED}); inputs just before:\n${suspects?.join('\n')}`).toBe(true);
    expectAliveAndClean('orders', orders.child, orders.output());
    expectAliveAndClean('web', web.child, web.output());

    // Normal traffic still flows with the verified identity, and nothing forged ever reached the app.
    await normalThroughWeb();
    expect(
      seenPrincipals.filter((p) => p !== WEB_ID),
      `seed ${SEED}`,
    ).toEqual([]);
    expect(seenXfcc.filter((x) => !x?.includes(`URI=${WEB_ID}`) || x.includes('evil'))).toEqual([]);
    const health = await httpRequest(orders.admin, '/healthz');
    expect(health.status).toBe(200);
    const metrics = await httpRequest(orders.admin, '/metrics');
    expect(metrics.status).toBe(200);

    expectAliveAndClean('orders', orders.child, orders.output());
    expectAliveAndClean('web', web.child, web.output());
    expectRssBounded('orders', rssBefore.orders, rssBytes(orders.child.pid!));
    expectRssBounded('web', rssBefore.web, rssBytes(web.child.pid!));
  });
});

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const LISTENING = /^.*"msg":"listening".*$/m;

interface CallResult {
  grpcStatus?: number;
  httpStatus?: number;
  error?: string;
  timedOut?: boolean;
  body: Buffer;
}

function grpcCall(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Buffer[], timeoutMs = 2000): Promise<CallResult> {
  return new Promise((resolvePromise) => {
    let responseHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (extra: Partial<CallResult>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const status = trailers['grpc-status'] ?? responseHeaders['grpc-status'];
      resolvePromise({
        ...(status !== undefined ? { grpcStatus: Number(status) } : {}),
        ...(responseHeaders[':status'] !== undefined ? { httpStatus: Number(responseHeaders[':status']) } : {}),
        body: Buffer.concat(chunks),
        ...extra,
      });
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'POST', ':path': CHECK, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    } catch (err) {
      resolvePromise({ error: `request: ${(err as Error).message}`, body: Buffer.alloc(0) });
      return;
    }
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      finish({ timedOut: true });
    }, timeoutMs);
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err: Error) => finish({ error: err.message }));
    stream.on('close', () => finish(stream.rstCode ? { error: `rst ${stream.rstCode}` } : {}));
    for (const part of body) stream.write(part);
    stream.end();
  });
}

describe(`fuzz: the ext_authz server (seed ${SEED})`, () => {
  const types = loadCheckTypes();
  let child: ChildProcess;
  let output: () => string;
  let address: string;

  beforeAll(async () => {
    const started = await startCli(['authz', '--policy', resolve(REPO_ROOT, 'test/fixtures/authz/policy.yaml'), '--listen', '127.0.0.1:0'], LISTENING);
    ({ child, output } = started);
    address = (JSON.parse(started.match[0]) as { address: string }).address;
  });
  afterAll(async () => {
    if (child) await stopChild(child);
  });

  const encode = (request: object) => Buffer.from(types.CheckRequest.encode(types.CheckRequest.fromObject(request)).finish());

  function randomCheckRequest(rng: Rng): object {
    const headers: Record<string, string> = {};
    for (let i = rng.int(0, 6); i > 0; i--) headers[rng.pick([':path', ':method', 'x-meshward-principal', 'authorization', rng.string(rng.int(1, 10), 'abcxyz-:')])] = rng.string(rng.int(0, 50), 'abc/%.:\0\u00e9 ');
    const http: Record<string, unknown> = {
      id: rng.string(rng.int(0, 40), 'abcdef0123456789-\n'),
      method: rng.pick(['GET', 'POST', 'HEAD', '', 'get', '\0', 'X'.repeat(rng.int(1, 300))]),
      path: randomPath(rng),
      host: rng.pick(['orders', '', 'evil', '\u00e9', 'a'.repeat(300)]),
      headers,
    };
    if (rng.chance(0.2)) http.headerMap = { headers: [{ key: rng.pick([':path', 'x', '']), rawValue: rng.bytes(rng.int(0, 20)) }] };
    const source: Record<string, unknown> = {};
    if (rng.chance(0.7)) source.principal = rng.pick([WEB_ID, 'spiffe://example.org/ns/default/sa/web', 'spiffe://', 'not a uri', `spiffe://example.org/${rng.string(rng.int(0, 30), 'ab/.%')}`]);
    return { attributes: { source, request: { http }, contextExtensions: rng.chance(0.3) ? { [rng.string(3, 'ab')]: rng.string(3, 'cd') } : {} } };
  }

  function mutate(rng: Rng, bytes: Buffer): Buffer {
    const out = Buffer.from(bytes);
    const kind = rng.int(0, 3);
    if (kind === 0 && out.length > 0) for (let i = rng.int(1, 8); i > 0; i--) out[rng.int(0, out.length - 1)] = rng.int(0, 255);
    if (kind === 1) return out.subarray(0, rng.int(0, out.length));
    if (kind === 2) {
      const at = rng.int(0, out.length);
      return Buffer.concat([out.subarray(0, at), rng.bytes(rng.int(1, 32)), out.subarray(at)]);
    }
    if (kind === 3 && out.length > 0) out[rng.int(0, out.length - 1)] = rng.pick([0x0a, 0x12, 0x1a, 0x22, 0x80, 0xff, 0x07]);
    return out;
  }

  const prefix = (flag: number, length: number) => {
    const p = Buffer.alloc(5);
    p[0] = flag;
    p.writeUInt32BE(length >>> 0, 1);
    return p;
  };

  /** One hostile call: headers and body parts. */
  function randomCall(rng: Rng): { headers: OutgoingHttpHeaders; body: Buffer[] } {
    const headers: OutgoingHttpHeaders = {};
    if (rng.chance(0.1)) headers['content-type'] = rng.pick(['application/json', 'application/grpc+proto', 'application/grpc+json', 'text/plain', 'application/grpcx', '']);
    if (rng.chance(0.1)) headers['grpc-timeout'] = rng.pick(['1m', '0S', '99999999H', 'abc', '-1S', '1n', '5']);
    if (rng.chance(0.1)) headers['grpc-encoding'] = rng.pick(['gzip', 'identity', 'deflate', 'snappy', '']);
    const message = rng.chance(0.5) ? encode(randomCheckRequest(rng)) : rng.bytes(rng.int(0, 400));
    const kind = rng.int(0, 99);
    if (kind < 25) return { headers, body: [frameMessage(message)] };
    if (kind < 50) return { headers, body: [frameMessage(mutate(rng, message))] };
    if (kind < 58) return { headers, body: [prefix(0, message.length + rng.int(1, 1000)), message] };
    if (kind < 64) return { headers, body: [prefix(0, Math.max(0, message.length - rng.int(1, 10))), message] };
    if (kind < 72) return { headers, body: [prefix(rng.chance(0.7) ? 1 : rng.int(2, 255), message.length), message] };
    if (kind < 78) return { headers, body: [prefix(0, rng.pick([0xffffffff, 0x7fffffff, 5 * 1024 * 1024, 4 * 1024 * 1024 + 1])), message.subarray(0, 100)] };
    if (kind < 84) return { headers, body: [frameMessage(message), frameMessage(message)] };
    if (kind < 88) return { headers, body: [] };
    if (kind < 94) {
      // The frame split at random points over several DATA frames.
      const framed = frameMessage(message);
      const cuts = [0, ...Array.from({ length: rng.int(1, 4) }, () => rng.int(0, framed.length)).sort((a, b) => a - b), framed.length];
      return { headers, body: cuts.slice(1).map((c, i) => framed.subarray(cuts[i]!, c)) };
    }
    return { headers, body: [rng.bytes(rng.int(1, 64))] };
  }

  it('answers ~1,000 hostile Check calls with a gRPC status or a clean stream error, never a hang', async () => {
    const rssBefore = rssBytes(child.pid!);
    const rng = new Rng(SEED ^ 0xa5a5a5a5);
    const calls = Array.from({ length: 1000 }, () => randomCall(rng.fork()));
    const sessions: ClientHttp2Session[] = [];
    const session = (lane: number) => {
      const s = sessions[lane];
      if (s && !s.closed && !s.destroyed) return s;
      const fresh = http2.connect(`http://${address}`);
      fresh.on('error', () => undefined);
      sessions[lane] = fresh;
      return fresh;
    };
    const results: Array<CallResult & { index: number }> = [];
    const started = performance.now();
    try {
      await drain(calls, 16, async (call, index) => {
        results.push({ index, ...(await grpcCall(session(index % 4), call.headers, call.body)) });
      });
      // A few connections that are not HTTP/2 at all, or break it.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const one = rng.fork();
          const bytes = i % 2 === 0 ? Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), one.bytes(one.int(0, 300))]) : one.bytes(one.int(1, 300));
          return new Promise<void>((r) => {
            const s = net.connect(splitAddress(address), () => s.write(bytes));
            s.on('error', () => undefined);
            s.on('close', () => r());
            setTimeout(() => s.destroy(), 200);
          });
        }),
      );
    } finally {
      for (const s of sessions) s?.destroy();
    }
    const elapsed = performance.now() - started;
    const hung = results.filter((r) => r.timedOut);
    // An HTTP 415 is the gRPC spec's answer to a content-type that is not gRPC: allowed for exactly those calls.
    const refusedContentType = (r: CallResult & { index: number }) => r.httpStatus === 415 && calls[r.index]!.headers['content-type'] !== undefined;
    const unanswered = results.filter((r) => !r.timedOut && r.grpcStatus === undefined && r.error === undefined && !refusedContentType(r));
    const statuses: Record<string, number> = {};
    for (const r of results) {
      const key = r.grpcStatus !== undefined ? `grpc ${r.grpcStatus}` : (r.error ?? `http ${r.httpStatus ?? 'none'}`);
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
    console.log(`authz fuzz seed ${SEED}: ${results.length} calls in ${elapsed.toFixed(0)} ms; outcomes ${JSON.stringify(statuses)}`);
    const describeCall = (r: CallResult & { index: number }) => ({ ...r, body: undefined, call: { headers: calls[r.index]!.headers, body: Buffer.concat(calls[r.index]!.body).toString('hex').slice(0, 200) } });
    expect(hung.map(describeCall), `hung calls (seed ${SEED})`).toEqual([]);
    expect(unanswered.map(describeCall), `calls with neither grpc-status nor a stream error (seed ${SEED})`).toEqual([]);
    expect(results).toHaveLength(1000);

    // Still alive and deciding.
    const ok = http2.connect(`http://${address}`);
    try {
      const allowed = encode({ attributes: { source: { principal: WEB_ID.replace(/^spiffe:\/\/[^/]+/, 'spiffe://example.org') }, request: { http: { id: 'r1', method: 'GET', path: '/api/orders/1', host: 'orders' } } } });
      const res = await grpcCall(ok, {}, [frameMessage(allowed)]);
      expect(res.grpcStatus).toBe(0);
      const decoded = types.CheckResponse.toObject(types.CheckResponse.decode(res.body.subarray(5))) as { status: { code?: number } };
      expect(decoded.status.code ?? 0).toBe(0);
    } finally {
      ok.destroy();
    }
    expectAliveAndClean('authz', child, output());
    expectRssBounded('authz', rssBefore, rssBytes(child.pid!));
  });
});

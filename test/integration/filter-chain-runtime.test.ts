import { credentials, loadPackageDefinition, Metadata, Server, ServerCredentials, status, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigSchema } from '../../src/config/index.js';
import { chainOf, type HttpFilter } from '../../src/filters/index.js';
import { replies } from '../../src/filters/local-reply.js';
import { requestHeaderChecks } from '../../src/filters/request-header-checks.js';
import type { HopRecord } from '../../src/proxy/hop-record.js';
import { InboundHttpListener } from '../../src/proxy/inbound-http.js';
import { OutboundListener } from '../../src/proxy/outbound-listener.js';
import { Http1Upstream } from '../../src/proxy/upstream-http1.js';
import { Http2Upstream } from '../../src/proxy/upstream-http2.js';
import type { Upstream } from '../../src/proxy/upstream.js';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { connectH2, h2Request, identityOf, type MtlsIdentity } from '../helpers/h2-client.js';
import { makeMesh, ORDERS_ID, WEB_ID } from '../helpers/sidecar.js';

// The chain runtime (filters/chain.ts) through real listeners: the inbound one (mTLS) and the outbound one (plain),
// HTTP/1.1 and HTTP/2 clients, an HTTP/1.1 app, an h2c app and a gRPC app. The filters are small test filters
// that leave a trace of what ran; the listeners are the sidecar's own classes, run in this process.

const silent = pino({ level: 'silent' });
const limits = sidecarConfigSchema.parse({ trustDomain: TD, identity: { files: { cert: 'c', key: 'k', bundle: 'b' } }, outbound: { listen: '127.0.0.1:0' } }).outbound!.limits;
const BIG = 'x'.repeat(4096);

/** A filter that says it ran on both sides: a request header for the app, a response header for the client. */
function tracer(name: string, options: { async?: boolean; reply?: boolean } = {}): HttpFilter {
  const later = <T>(value: T): T | Promise<T> => (options.async ? new Promise((resolve) => setImmediate(() => resolve(value))) : value);
  return {
    name,
    onRequest(ctx) {
      ctx.setHeaders.push([`x-seen-${name}`, 'yes']);
      return later(options.reply ? replies.forbidden(ctx.requestId, `refused by ${name}`) : undefined);
    },
    onResponse(_ctx, response) {
      const order = response.headers['x-response-side'];
      response.headers['x-response-side'] = order === undefined ? name : `${String(order)},${name}`;
      return later(undefined);
    },
  };
}

const upperCaseBody: HttpFilter = {
  name: 'upper',
  requestBody: { maxBytes: 1024 },
  onRequest(ctx) {
    ctx.body = Buffer.from(ctx.body!.toString().toUpperCase() + '!');
    return undefined;
  },
};

const bodyIsStreamed: HttpFilter = {
  name: 'streamed',
  onRequest(ctx) {
    ctx.setHeaders.push(['x-body-buffered', String(ctx.body !== undefined)]);
    return undefined;
  },
};

/** Replaces `secret` in whole bodies (by as many stars in gRPC messages, whose length prefix must stay right). */
function masking(oversize: 'reply502' | 'pass', stars = '***'): HttpFilter {
  return {
    name: 'mask',
    responseBody: { maxBytes: 1024, oversize },
    onResponse(_ctx, response) {
      if (response.body !== undefined) response.body = Buffer.from(response.body.toString('latin1').replaceAll('secret', stars), 'latin1');
    },
  };
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The app: records every request; `/json` answers a field to mask, `/big` 4 kB, anything else `ok`. */
function appHandler(seen: Seen[]) {
  return (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const body = req.url === '/json' ? '{"card":"secret"}' : req.url === '/big' ? BIG : 'ok';
      (res as http.ServerResponse).writeHead(200, { 'content-type': req.url === '/json' ? 'application/json' : 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

type ListenerKind = 'inbound' | 'outbound';
type HttpVersion = 'HTTP/1.1' | 'HTTP/2';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let dir: { dir: string; cleanup: () => void };
let server: MtlsIdentity;
let client: MtlsIdentity;
const closers: Array<() => Promise<void> | void> = [];
const seen: Seen[] = [];
let h1App: string;
let h2App: string;

beforeAll(async () => {
  dir = tempDir();
  const mesh = await makeMesh(dir.dir);
  await mesh.issue('orders', ORDERS_ID);
  await mesh.issue('web', WEB_ID);
  server = identityOf(dir.dir, 'orders', mesh.bundle);
  client = identityOf(dir.dir, 'web', mesh.bundle);
  const a = http.createServer(appHandler(seen));
  const b = http2.createServer(appHandler(seen));
  for (const s of [a, b]) {
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  }
  h1App = `127.0.0.1:${(a.address() as AddressInfo).port}`;
  h2App = `127.0.0.1:${(b.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  dir?.cleanup();
});

/** A listener of `kind` with this chain, forwarding to `upstream`; its requests go out with Host `app`. */
async function listen(kind: ListenerKind, filters: HttpFilter[], upstream: Upstream, appIsHttp2: boolean, records: HopRecord[] = []): Promise<string> {
  const chain = chainOf(filters);
  const common = { host: '127.0.0.1', port: 0, limits, observe: (r: HopRecord) => records.push(r), guardEvents: { peerCutOff: () => undefined, connectionCutOff: () => undefined }, logger: silent };
  const listener =
    kind === 'outbound'
      ? new OutboundListener({ ...common, headerChecks: requestHeaderChecks('drop'), routes: { upstreamFor: (host) => (host === 'app' ? upstream : undefined) }, chainFor: () => chain })
      : new InboundHttpListener({
          ...common,
          tls: { cert: server.cert, key: server.key, ca: server.ca, minVersion: 'TLSv1.3', handshakeTimeout: 5000 },
          trustDomain: TD,
          ownId: () => ORDERS_ID,
          chain,
          upstream,
          appIsHttp2,
        });
  const address = await listener.listen();
  closers.push(async () => {
    await listener.close(0);
    await upstream.destroy();
  });
  return `127.0.0.1:${address.port}`;
}

function send(kind: ListenerKind, version: HttpVersion, address: string, path: string, options: { method?: string; body?: string; chunked?: boolean } = {}): Promise<Answer> {
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
  if (version === 'HTTP/2') {
    const session = connectH2(address, kind === 'inbound' ? client : undefined);
    return h2Request(session, { ':method': method, ':path': path, ':authority': 'app' }, options.body === undefined ? {} : { body: options.body }).then((answer) => {
      session.close();
      return { status: answer.status, headers: answer.headers, body: answer.body };
    });
  }
  const [host, port] = address.split(':');
  const headers: Record<string, string> = { host: 'app' };
  if (options.body !== undefined && !options.chunked) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const onAnswer = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    };
    const common = { host, port: Number(port), path, method, headers, agent: false as const };
    const req = kind === 'inbound' ? https.request({ ...common, ...client, servername: 'localhost' }, onAnswer) : http.request(common, onAnswer);
    req.on('error', reject);
    if (options.body !== undefined && options.chunked) {
      // Two writes without a content-length: chunked transfer encoding.
      req.write(options.body.slice(0, 3));
      req.end(options.body.slice(3));
    } else {
      req.end(options.body);
    }
  });
}

const cases: Array<[ListenerKind, HttpVersion]> = [
  ['inbound', 'HTTP/1.1'],
  ['inbound', 'HTTP/2'],
  ['outbound', 'HTTP/1.1'],
  ['outbound', 'HTTP/2'],
];

describe.each(cases)('the chain on the %s listener over %s', (kind, version) => {
  const app = () => new Http1Upstream({ address: h1App, headersTimeoutMs: 5000, bodyTimeoutMs: 5000 });

  it('runs the request side in order and the response side in reverse, sync and async filters alike', async () => {
    const address = await listen(kind, [tracer('a'), tracer('b', { async: true }), tracer('c')], app(), false);
    const before = seen.length;
    const answer = await send(kind, version, address, '/order');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('ok');
    expect(answer.headers['x-response-side']).toBe('c,b,a');
    const request = seen[before]!;
    expect([request.headers['x-seen-a'], request.headers['x-seen-b'], request.headers['x-seen-c']]).toEqual(['yes', 'yes', 'yes']);
  });

  it('ends the request side at the first local reply; the response side runs on it for the filters that ran', async () => {
    const address = await listen(kind, [tracer('a'), tracer('b', { async: true, reply: true }), tracer('c')], app(), false);
    const before = seen.length;
    const answer = await send(kind, version, address, '/order');
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'forbidden', reason: 'refused by b' });
    expect(answer.headers['x-response-side']).toBe('b,a');
    expect(answer.headers['content-length']).toBe(String(Buffer.byteLength(answer.body)));
    expect(seen.length).toBe(before);
  });

  it.each([false, true])('buffers the request body only for a filter that reads it, and sends what it left (chunked: %s)', async (chunked) => {
    const address = await listen(kind, [upperCaseBody], app(), false);
    const before = seen.length;
    expect((await send(kind, version, address, '/order', { body: 'hello world', chunked })).status).toBe(200);
    expect(seen[before]!.body).toBe('HELLO WORLD!');
    expect(seen[before]!.headers['content-length']).toBe('12');

    const streaming = await listen(kind, [bodyIsStreamed], app(), false);
    expect((await send(kind, version, streaming, '/order', { body: 'hello world', chunked })).status).toBe(200);
    expect(seen[before + 1]).toMatchObject({ body: 'hello world', headers: { 'x-body-buffered': 'false' } });
  });

  it('refuses a body larger than the filters buffer with 413, and the app never sees it', async () => {
    const address = await listen(kind, [tracer('a'), upperCaseBody], app(), false);
    const before = seen.length;
    for (const chunked of [false, true]) {
      const answer = await send(kind, version, address, '/order', { body: 'y'.repeat(2000), chunked });
      expect(answer.status).toBe(413);
      expect(answer.headers['x-response-side']).toBe('a');
    }
    expect(seen.length).toBe(before);
  });

  it('buffers the response body for a filter that reads it and fixes content-length', async () => {
    const address = await listen(kind, [tracer('a'), masking('reply502')], app(), false);
    const answer = await send(kind, version, address, '/json');
    expect(answer).toMatchObject({ status: 200, body: '{"card":"***"}' });
    expect(answer.headers['content-length']).toBe('14');
    expect(answer.headers['x-response-side']).toBe('a');
  });

  it('answers 502 for a response body over the cap, never the body unfiltered; with oversize pass it streams on', async () => {
    const refusing = await listen(kind, [tracer('a'), masking('reply502')], app(), false);
    const refused = await send(kind, version, refusing, '/big');
    expect(refused.status).toBe(502);
    expect(refused.body).not.toContain('xxx');
    expect(refused.headers['x-response-side']).toBe('a');

    const passing = await listen(kind, [masking('pass')], app(), false);
    const passed = await send(kind, version, passing, '/big');
    expect(passed).toMatchObject({ status: 200, body: BIG });
  });

  it('answers 500 when a filter throws on the request side or fails on the response side, and sends nothing of the app', async () => {
    const throwing: HttpFilter = {
      name: 'broken',
      onRequest() {
        throw new Error('boom');
      },
    };
    const rejecting: HttpFilter = { name: 'broken', onResponse: () => Promise.reject(new Error('boom')) };
    const before = seen.length;
    const first = await send(kind, version, await listen(kind, [throwing], app(), false), '/order');
    expect(first.status).toBe(500);
    expect(first.body).not.toContain('boom');
    expect(seen.length).toBe(before);
    const second = await send(kind, version, await listen(kind, [rejecting], app(), false), '/json');
    expect(second.status).toBe(500);
    expect(second.body).not.toContain('card');
  });

  it('runs the response side on an h2c app answer', async () => {
    const address = await listen(kind, [tracer('a'), masking('reply502')], new Http2Upstream({ address: h2App, headersTimeoutMs: 5000 }), true);
    const answer = await send(kind, version, address, '/json');
    expect(answer).toMatchObject({ status: 200, body: '{"card":"***"}' });
    expect(answer.headers['x-response-side']).toBe('a');
  });
});

describe('gRPC through a chain with a response side', () => {
  const PROTO = `
syntax = "proto3";
package echo;
message Msg { string text = 1; }
service Echo {
  rpc Say(Msg) returns (Msg);
  rpc Fail(Msg) returns (Msg);
  rpc Count(Msg) returns (stream Msg);
}`;
  type Call = (req: { text: string }, callback: (err: ServiceError | null, res?: { text: string }) => void) => void;
  interface EchoClient extends Client {
    Say: Call;
    Fail: Call;
    Count(req: { text: string }): NodeJS.EventEmitter;
  }
  let Echo: ServiceClientConstructor;
  let grpcApp: string;

  beforeAll(async () => {
    const file = join(dir.dir, 'echo.proto');
    writeFileSync(file, PROTO);
    const pkg = loadPackageDefinition(loadSync(file)) as unknown as { echo: { Echo: ServiceClientConstructor } };
    Echo = pkg.echo.Echo;
    const grpc = new Server();
    grpc.addService(Echo.service, {
      Say: (call: { request: { text: string } }, cb: (err: null, res: { text: string }) => void) => cb(null, { text: `secret ${call.request.text}` }),
      // Trailers-only: an error before any message.
      Fail: (_call: unknown, cb: (err: Partial<ServiceError>) => void) => cb({ code: status.FAILED_PRECONDITION, details: 'not today', metadata: new Metadata() }),
      Count: (call: { write(m: { text: string }): void; emit(e: string, v: unknown): void }) => {
        call.write({ text: 'one' });
        call.write({ text: 'two' });
        // An error after messages: grpc-status in trailers.
        call.emit('error', { code: status.RESOURCE_EXHAUSTED, details: 'enough' });
      },
    });
    const port = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    grpcApp = `127.0.0.1:${port}`;
    closers.push(() => new Promise<void>((resolve) => grpc.tryShutdown(() => resolve())));
  });

  async function clientFor(kind: ListenerKind, filters: HttpFilter[]): Promise<EchoClient> {
    const address = await listen(kind, filters, new Http2Upstream({ address: grpcApp, headersTimeoutMs: 5000 }), true);
    const creds = kind === 'inbound' ? credentials.createSsl(client.ca, client.key, client.cert) : credentials.createInsecure();
    const options = kind === 'inbound' ? { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'app' } : { 'grpc.default_authority': 'app' };
    const echo = new Echo(address, creds, options) as unknown as EchoClient;
    closers.unshift(() => echo.close());
    return echo;
  }

  const unary = (call: Call, text: string) =>
    new Promise<{ err: ServiceError | null; res?: { text: string } }>((resolve) => call({ text }, (err, res) => resolve({ err, res })));

  describe.each(['inbound', 'outbound'] as const)('on the %s listener', (kind) => {
    it.each([
      ['a head-only response side', () => [tracer('a')]],
      ['a buffered body', () => [masking('reply502', '******')]],
    ])('keeps messages and statuses, trailers and trailers-only, with %s', async (_what, filters) => {
      const echo = await clientFor(kind, filters());
      const said = await unary(echo.Say.bind(echo), 'hi');
      expect(said.err).toBeNull();
      expect(said.res?.text).toMatch(/^(secret|\*{6}) hi$/);
      const failed = await unary(echo.Fail.bind(echo), 'x');
      expect(failed.err).toMatchObject({ code: status.FAILED_PRECONDITION, details: 'not today' });
      const messages: string[] = [];
      const ended = await new Promise<ServiceError>((resolve) => {
        const call = echo.Count({ text: 'x' });
        call.on('data', (m: { text: string }) => messages.push(m.text));
        call.on('error', resolve);
      });
      expect(messages).toEqual(['one', 'two']);
      expect(ended).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: 'enough' });
    });
  });
});

import {
  credentials,
  loadPackageDefinition,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceClientConstructor,
  type ServiceError,
  type StatusObject,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild, tempDir } from '../helpers/cli.js';
import { makeMesh, ORDERS_ID, runPair, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

// gRPC end to end: a grpc-js client (h2c) → web's outbound listener → mTLS (ALPN h2) → orders' inbound listener →
// a real grpc-js server (h2c app). Unary, server-streaming and bidi calls; gRPC statuses from the app (after a
// message, and trailers-only); a denial by policy; a deadline; and one call straight to the inbound over TLS.

const PROTO = `
syntax = "proto3";
package echo;
message Msg { string text = 1; int32 n = 2; }
service Echo {
  rpc Say(Msg) returns (Msg);
  rpc Count(Msg) returns (stream Msg);
  rpc Chat(stream Msg) returns (stream Msg);
  rpc Slow(Msg) returns (Msg);
  rpc Hold(Msg) returns (Msg);
}
service Admin {
  rpc Wipe(Msg) returns (Msg);
}
`;

const POLICY = `
defaultAction: deny
rules:
  - name: web-calls-echo
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { methods: ["POST"], paths: ["/echo.Echo/**"] }
`;

interface Msg {
  text: string;
  n: number;
}

type Unary = (req: Msg, metadata: Metadata, options: { deadline?: Date }, callback: (err: ServiceError | null, res?: Msg) => void) => ClientUnaryCall;

interface EchoClient extends Client {
  Say: Unary;
  Slow: Unary;
  Hold: Unary;
  Count(req: Msg): ClientReadableStream<Msg>;
  Chat(): ClientDuplexStream<Msg, Msg>;
}

interface AdminClient extends Client {
  Wipe: Unary;
}

interface Seen {
  path: string;
  metadata: Metadata;
}

const NOT_FOUND_MESSAGE = 'order #42 not found: ünknown';

/** :authority `orders`, which web's outbound listener routes to the orders sidecar. */
const VIA_OUTBOUND = { 'grpc.default_authority': 'orders' };

/** A unary call's answer, its status (with trailing metadata) and its initial metadata. */
function unary(method: Unary, client: Client, req: Msg, deadlineMs?: number): Promise<{ err: ServiceError | null; res?: Msg; status: StatusObject; headers?: Metadata }> {
  return new Promise((resolve) => {
    let result: { err: ServiceError | null; res?: Msg } | undefined;
    let finalStatus: StatusObject | undefined;
    let headers: Metadata | undefined;
    const finish = () => result !== undefined && finalStatus !== undefined && resolve({ ...result, status: finalStatus, ...(headers ? { headers } : {}) });
    const options = deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };
    const call = method.call(client, req, new Metadata(), options, (err, res) => {
      result = { err, ...(res ? { res } : {}) };
      finish();
    });
    call.on('metadata', (m: Metadata) => (headers = m));
    call.on('status', (s: StatusObject) => {
      finalStatus = s;
      finish();
    });
  });
}

/** Every message of a server stream, and how it ended. */
function collect(stream: ClientReadableStream<Msg>): Promise<{ messages: Msg[]; status: StatusObject; err?: ServiceError }> {
  return new Promise((resolve) => {
    const messages: Msg[] = [];
    let err: ServiceError | undefined;
    stream.on('data', (m: Msg) => messages.push(m));
    stream.on('error', (e: ServiceError) => (err = e));
    stream.on('status', (s: StatusObject) => setImmediate(() => resolve({ messages, status: s, ...(err ? { err } : {}) })));
  });
}

interface EchoApp {
  server: Server;
  port: number;
  Echo: ServiceClientConstructor;
  Admin: ServiceClientConstructor;
  /** Every call that reached the app, with the metadata it carried. */
  seen: Seen[];
  wipes: () => number;
  /** Resolved when the next Slow call is cancelled. */
  nextSlowCancel: () => Promise<void>;
  /** Resolved with a function that answers the next Hold call, once that call has arrived. */
  nextHold: () => Promise<() => void>;
}

/** The app: a real grpc-js server on 127.0.0.1:0, insecure (h2c), as an app behind a sidecar is. */
async function startEchoApp(dir: string): Promise<EchoApp> {
  const protoFile = join(dir, 'echo.proto');
  writeFileSync(protoFile, PROTO);
  const pkg = loadPackageDefinition(loadSync(protoFile, { keepCase: true, defaults: true })) as unknown as {
    echo: { Echo: ServiceClientConstructor; Admin: ServiceClientConstructor };
  };
  const seen: Seen[] = [];
  let wipes = 0;
  const slowCancels: Array<() => void> = [];
  const holds: Array<(answer: () => void) => void> = [];
  const server = new Server();
  const note = (path: string, metadata: Metadata) => seen.push({ path, metadata });
  server.addService(pkg.echo.Echo.service, {
    Say(call: ServerUnaryCall<Msg, Msg>, callback: sendUnaryData<Msg>) {
      note('/echo.Echo/Say', call.metadata);
      if (call.request.text === 'missing') {
        const trailer = new Metadata();
        trailer.set('x-reason', 'gone');
        callback({ code: status.NOT_FOUND, details: NOT_FOUND_MESSAGE, metadata: trailer });
        return;
      }
      const trailer = new Metadata();
      trailer.set('x-trailer', 'kept');
      callback(null, { text: `hello ${call.request.text}`, n: call.request.n + 1 }, trailer);
    },
    Count(call: ServerWritableStream<Msg, Msg>) {
      note('/echo.Echo/Count', call.metadata);
      const { n, text } = call.request;
      for (let i = 0; i < n; i++) call.write({ text: `${text}-${i}`, n: i });
      if (text === 'fail-after') {
        call.emit('error', { code: status.NOT_FOUND, details: NOT_FOUND_MESSAGE });
        return;
      }
      call.end();
    },
    Chat(call: ServerDuplexStream<Msg, Msg>) {
      note('/echo.Echo/Chat', call.metadata);
      call.on('data', (m: Msg) => call.write({ text: `re: ${m.text}`, n: m.n * 10 }));
      call.on('end', () => call.end());
    },
    Slow(call: ServerUnaryCall<Msg, Msg>) {
      note('/echo.Echo/Slow', call.metadata);
      // Never answers: only the client's deadline ends the call.
      call.on('cancelled', () => slowCancels.shift()?.());
    },
    Hold(call: ServerUnaryCall<Msg, Msg>, callback: sendUnaryData<Msg>) {
      note('/echo.Echo/Hold', call.metadata);
      holds.shift()?.(() => callback(null, { text: `held ${call.request.text}`, n: call.request.n }));
    },
  });
  server.addService(pkg.echo.Admin.service, {
    Wipe(_call: ServerUnaryCall<Msg, Msg>, callback: sendUnaryData<Msg>) {
      wipes += 1;
      callback(null, { text: 'wiped', n: 0 });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    port,
    Echo: pkg.echo.Echo,
    Admin: pkg.echo.Admin,
    seen,
    wipes: () => wipes,
    nextSlowCancel: () => new Promise((resolve) => slowCancels.push(resolve)),
    nextHold: () => new Promise((resolve) => holds.push(resolve)),
  };
}

describe('sidecar: gRPC through an outbound and an inbound sidecar', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: EchoApp;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  let echo: EchoClient;
  let admin: AdminClient;

  beforeAll(async () => {
    app = await startEchoApp(dir);
    mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: `h2c://127.0.0.1:${app.port}`, policy: POLICY }));
    echo = new app.Echo(web.outbound!, credentials.createInsecure(), VIA_OUTBOUND) as unknown as EchoClient;
    admin = new app.Admin(web.outbound!, credentials.createInsecure(), VIA_OUTBOUND) as unknown as AdminClient;
  });

  afterAll(async () => {
    echo?.close();
    admin?.close();
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.server.forceShutdown();
    cleanup();
  });

  it('carries a unary call, with the verified identity as metadata and trailing metadata intact', async () => {
    const before = app.seen.length;
    const { err, res, status: s } = await unary(echo.Say, echo, { text: 'web', n: 41 });
    expect(err).toBeNull();
    expect(res).toEqual({ text: 'hello web', n: 42 });
    expect(s.code).toBe(status.OK);
    expect(s.metadata.get('x-trailer')).toEqual(['kept']);
    expect(app.seen.length).toBe(before + 1);
    const { metadata } = app.seen.at(-1)!;
    expect(metadata.get('x-meshward-principal')).toEqual([WEB_ID]);
    const xfcc = metadata.get('x-forwarded-client-cert');
    expect(xfcc).toHaveLength(1);
    expect(String(xfcc[0])).toMatch(new RegExp(`^By=${ORDERS_ID};Hash=[0-9a-f]{64};URI=${WEB_ID}$`));
  });

  it('strips identity metadata a client forges', async () => {
    const forged = new Metadata();
    forged.set('x-meshward-principal', 'spiffe://example.org/ns/default/sa/admin');
    forged.set('x-forwarded-client-cert', 'By=x;URI=spiffe://example.org/ns/default/sa/admin');
    await new Promise<void>((resolve, reject) =>
      echo.Say({ text: 'forger', n: 0 }, forged, {}, (err) => (err ? reject(err) : resolve())),
    );
    const { metadata } = app.seen.at(-1)!;
    expect(metadata.get('x-meshward-principal')).toEqual([WEB_ID]);
    expect(metadata.get('x-forwarded-client-cert')).toHaveLength(1);
    expect(String(metadata.get('x-forwarded-client-cert')[0])).toContain(`URI=${WEB_ID}`);
  });

  it('delivers every message of a server stream, in order', async () => {
    const { messages, status: s, err } = await collect(echo.Count({ text: 'm', n: 200 }));
    expect(err).toBeUndefined();
    expect(s.code).toBe(status.OK);
    expect(messages.map((m) => m.n)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(messages.at(-1)!.text).toBe('m-199');
  });

  it('carries a bidi stream turn by turn (each answer arrives before the next message is sent)', async () => {
    const call = echo.Chat();
    const replies: Msg[] = [];
    const failed = new Promise<never>((_, reject) => call.on('error', reject));
    failed.catch(() => undefined);
    const next = () => Promise.race([new Promise<Msg>((resolve) => call.once('data', resolve)), failed]);
    for (let i = 1; i <= 3; i++) {
      const reply = next();
      call.write({ text: `turn ${i}`, n: i });
      replies.push(await reply);
    }
    const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
    call.end();
    expect(replies).toEqual([
      { text: 're: turn 1', n: 10 },
      { text: 're: turn 2', n: 20 },
      { text: 're: turn 3', n: 30 },
    ]);
    expect((await ended).code).toBe(status.OK);
  });

  it('passes an app error after messages with its exact code and message (trailers intact)', async () => {
    const { messages, status: s, err } = await collect(echo.Count({ text: 'fail-after', n: 2 }));
    expect(messages.map((m) => m.text)).toEqual(['fail-after-0', 'fail-after-1']);
    expect(s.code).toBe(status.NOT_FOUND);
    expect(s.details).toBe(NOT_FOUND_MESSAGE);
    expect(err?.code).toBe(status.NOT_FOUND);
    expect(err?.details).toBe(NOT_FOUND_MESSAGE);
  });

  it('passes an immediate app error (a trailers-only answer) with its exact code and message', async () => {
    const { err, res, status: s } = await unary(echo.Say, echo, { text: 'missing', n: 0 });
    expect(res).toBeUndefined();
    expect(err?.code).toBe(status.NOT_FOUND);
    expect(err?.details).toBe(NOT_FOUND_MESSAGE);
    expect(s.code).toBe(status.NOT_FOUND);
    expect(s.details).toBe(NOT_FOUND_MESSAGE);
  });

  it('keeps the trailing metadata of a trailers-only answer in the trailers', async () => {
    // gRPC over HTTP/2: Trailers-Only is ":status, content-type, trailers"; the app's custom metadata there is
    // trailing metadata, which a client reads from the status (err.metadata), not from the initial metadata.
    const { err, headers } = await unary(echo.Say, echo, { text: 'missing', n: 0 });
    expect(err?.code).toBe(status.NOT_FOUND);
    expect(err?.metadata.get('x-reason')).toEqual(['gone']);
    expect(headers?.get('x-reason') ?? []).toEqual([]);
  });

  it('carries messages larger than HTTP/2 flow-control windows both ways', async () => {
    const text = 'x'.repeat(3 * 1024 * 1024);
    const { err, res } = await unary(echo.Say, echo, { text, n: 0 });
    expect(err).toBeNull();
    expect(res?.text.length).toBe(text.length + 'hello '.length);
    expect(res?.text === `hello ${text}`).toBe(true);
  });

  it('refuses a method the policy denies with PERMISSION_DENIED (HTTP 403), without reaching the app', async () => {
    // grpc-js maps an HTTP 403 without a grpc-status to PERMISSION_DENIED (the gRPC HTTP-to-status mapping).
    const { err } = await unary(admin.Wipe, admin, { text: 'all', n: 0 });
    expect(err?.code).toBe(status.PERMISSION_DENIED);
    expect(err?.details).toContain('403');
    expect(app.wipes()).toBe(0);
  });

  it('ends a call that outlives its deadline with DEADLINE_EXCEEDED, and the app sees it cancelled', async () => {
    const cancelled = app.nextSlowCancel();
    const { err } = await unary(echo.Slow, echo, { text: 'zzz', n: 0 }, 300);
    expect(err?.code).toBe(status.DEADLINE_EXCEEDED);
    await cancelled;
  });

  it('serves gRPC straight to the inbound listener over mutual TLS (ALPN h2)', async () => {
    const tls: ChannelCredentials = credentials.createSsl(
      readFileSync(mesh.bundle),
      readFileSync(join(dir, 'web.key')),
      readFileSync(join(dir, 'web.pem')),
    );
    const direct = new app.Echo(orders.inbound!, tls, { 'grpc.ssl_target_name_override': 'localhost' }) as unknown as EchoClient;
    try {
      const { err, res } = await unary(direct.Say, direct, { text: 'direct', n: 1 });
      expect(err).toBeNull();
      expect(res).toEqual({ text: 'hello direct', n: 2 });
      expect(app.seen.at(-1)!.metadata.get('x-meshward-principal')).toEqual([WEB_ID]);
      const { messages } = await collect(direct.Count({ text: 'd', n: 5 }));
      expect(messages.map((m) => m.n)).toEqual([0, 1, 2, 3, 4]);
    } finally {
      direct.close();
    }
  });
});

describe('sidecar: gRPC while the outbound sidecar drains', () => {
  const { dir, cleanup } = tempDir();
  let app: EchoApp;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  let echo: EchoClient;

  beforeAll(async () => {
    app = await startEchoApp(dir);
    const mesh = await makeMesh(dir);
    ({ orders, web } = await runPair(mesh, { app: `h2c://127.0.0.1:${app.port}`, policy: POLICY }));
    echo = new app.Echo(web.outbound!, credentials.createInsecure(), VIA_OUTBOUND) as unknown as EchoClient;
  });

  afterAll(async () => {
    echo?.close();
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.server.forceShutdown();
    cleanup();
  });

  it('lets a call in flight on an h2c connection finish on SIGTERM, then exits 0', async () => {
    const arrived = app.nextHold();
    const call = unary(echo.Hold, echo, { text: 'through the drain', n: 7 });
    const answer = await Promise.race([
      arrived,
      call.then(({ err }) => Promise.reject(new Error(`the call ended before it reached the app: ${err?.message}`))),
    ]);
    const exit = stopChild(web.child, 'SIGTERM');
    for (let i = 0; i < 200 && !web.output().includes('"msg":"draining"'); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(web.output()).toContain('"msg":"draining"');
    answer();
    const { err, res } = await call;
    expect(err).toBeNull();
    expect(res).toEqual({ text: 'held through the drain', n: 7 });
    expect(await exit).toBe(0);
  });
});

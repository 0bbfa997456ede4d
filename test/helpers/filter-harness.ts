import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { HopContext } from '../../src/filters/chain.js';
import type { FilterEnvironment, FilterResponse, HttpFilter } from '../../src/filters/http-filter.js';
import { replies, type LocalReply } from '../../src/filters/local-reply.js';

// Serving a chain of HttpFilters in front of a real app over real HTTP, until the listeners run `filters:` lists:
// an http.Server that builds a HopContext per request, runs the request sides in order (a reply ends them), forwards
// to the app, and runs the response sides in reverse on the app's answer or the local reply. Bodies are buffered as
// the filters ask (requestBody / responseBody, with `when` and the oversize rule), as the runtime's contract says.

/** A logger whose lines a test can read (and search for what must never be logged), and wait for. */
export function memoryLogger() {
  const lines: string[] = [];
  const written = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter((l) => l !== '')) {
        lines.push(line);
        written.emit('line', line);
      }
      done();
    },
  });
  /** Resolves with the first line, logged already or to come, that matches. */
  const waitFor = (pattern: RegExp): Promise<string> => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        written.off('line', onLine);
        resolve(line);
      };
      written.on('line', onLine);
    });
  };
  return { logger: pino({ level: 'debug' }, sink), lines, waitFor };
}

export type TestFilterEnvironment = FilterEnvironment & Pick<ReturnType<typeof memoryLogger>, 'lines' | 'waitFor'>;

export function filterEnv(overrides: Partial<FilterEnvironment> = {}): TestFilterEnvironment {
  const { logger, lines, waitFor } = memoryLogger();
  return { configDir: process.cwd(), logger, listener: 'ingress', tls: false, lines, waitFor, ...overrides };
}

export interface ContextInput {
  method?: string;
  path?: string;
  host?: string;
  /** As sent: names in any case; repeated names as repeated pairs. */
  headers?: Array<[string, string]> | Record<string, string>;
  sourceIp?: string;
  principal?: string;
  body?: Buffer;
}

/** A HopContext as the runtime builds one: headers lower-cased and joined, rawHeaders as sent. */
export function hopContext(input: ContextInput = {}): HopContext {
  const pairs = Array.isArray(input.headers) ? input.headers : Object.entries(input.headers ?? {});
  const headers: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  const ctx: HopContext = {
    filtersEntered: 0,
    request: {
      method: input.method ?? 'GET',
      host: input.host ?? 'api.example.com',
      path: input.path ?? '/',
      headers,
      ...(input.sourceIp === undefined ? {} : { sourceIp: input.sourceIp }),
      ...(input.principal === undefined ? {} : { principal: input.principal }),
    },
    requestId: 'req-1',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    peer: undefined,
    rawHeaders: pairs.flat(),
    declaredBodyBytes: input.body?.length,
    setHeaders: [],
    removeHeaders: [],
  };
  if (input.body !== undefined) ctx.body = input.body;
  return ctx;
}

/** The response a local reply becomes, as the runtime sends it. */
export function replyResponse(reply: LocalReply): FilterResponse {
  return { status: reply.status, headers: { 'content-type': 'application/json', ...reply.headers }, body: Buffer.from(reply.body) };
}

export interface Harness {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function listen(server: http.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A real app on a free port. */
export async function startApp(handler: RequestListener): Promise<Harness> {
  const server = http.createServer(handler);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, close: () => closeServer(server) };
}

/** The chain in front of the app at `appPort`, on a free port of `host`. */
export async function serveChain(filters: readonly HttpFilter[], appPort: number, host = '127.0.0.1'): Promise<Harness> {
  const server = http.createServer((req, res) => {
    handle(filters, appPort, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  const port = await listen(server, host);
  return { url: `http://${host === '::1' ? '[::1]' : host}:${port}`, port, close: () => closeServer(server) };
}

async function handle(filters: readonly HttpFilter[], appPort: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ctx = contextOf(req);
  const ran: HttpFilter[] = [];
  const bodyCap = Math.min(...filters.map((f) => f.requestBody?.maxBytes ?? Infinity));
  let reply: LocalReply | undefined;
  if (Number.isFinite(bodyCap)) {
    const body = await readUpTo(req, bodyCap);
    if (body === undefined) reply = replies.tooLarge(ctx.requestId, bodyCap);
    else ctx.body = body;
  }
  for (const filter of filters) {
    if (reply !== undefined) break;
    ran.push(filter);
    reply = (await filter.onRequest?.(ctx)) ?? undefined;
  }
  if (reply !== undefined) {
    await respond(res, ctx, ran, replyResponse(reply));
    return;
  }
  const upstream = await forward(ctx, req, appPort);
  const response: FilterResponse = { status: upstream.statusCode!, headers: upstream.headers as FilterResponse['headers'] };
  const buffering = ran.filter((f) => f.responseBody !== undefined && (f.responseBody.when?.(response) ?? true));
  if (buffering.length > 0) {
    const cap = Math.min(...buffering.map((f) => f.responseBody!.maxBytes));
    const { body, rest } = await readResponseUpTo(upstream, cap);
    if (body !== undefined) {
      response.body = body;
    } else if (buffering.some((f) => f.responseBody!.oversize === 'reply502')) {
      upstream.destroy();
      await respond(res, ctx, ran, replyResponse(replies.badGateway(ctx.requestId)));
      return;
    } else {
      await runResponseSides(ctx, ran, response);
      res.writeHead(response.status, response.headers);
      res.write(rest);
      upstream.pipe(res);
      return;
    }
  }
  if (response.body === undefined) {
    await runResponseSides(ctx, ran, response);
    res.writeHead(response.status, response.headers);
    upstream.pipe(res);
    return;
  }
  await respond(res, ctx, ran, response);
}

function contextOf(req: IncomingMessage): HopContext {
  const declared = req.headers['content-length'];
  return {
    filtersEntered: 0,
    request: {
      method: req.method ?? '',
      host: req.headers.host ?? '',
      path: req.url ?? '',
      headers: req.headers as Record<string, string>,
      ...(req.socket.remoteAddress === undefined ? {} : { sourceIp: req.socket.remoteAddress }),
    },
    requestId: 'harness-request',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    peer: undefined,
    rawHeaders: req.rawHeaders,
    declaredBodyBytes: declared === undefined ? undefined : Number(declared),
    setHeaders: [],
    removeHeaders: [],
  };
}

async function runResponseSides(ctx: HopContext, ran: readonly HttpFilter[], response: FilterResponse): Promise<void> {
  for (const filter of [...ran].reverse()) await filter.onResponse?.(ctx, response);
}

async function respond(res: ServerResponse, ctx: HopContext, ran: readonly HttpFilter[], response: FilterResponse): Promise<void> {
  await runResponseSides(ctx, ran, response);
  const body = response.body ?? Buffer.alloc(0);
  const headers: FilterResponse['headers'] = { ...response.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  res.writeHead(response.status, headers);
  res.end(body);
}

function forward(ctx: HopContext, req: IncomingMessage, appPort: number): Promise<IncomingMessage> {
  const drop = new Set([...ctx.removeHeaders, ...ctx.setHeaders.map(([name]) => name), 'connection', 'keep-alive', 'transfer-encoding']);
  const headers: string[] = [];
  for (let i = 0; i < ctx.rawHeaders.length; i += 2) {
    if (!drop.has(ctx.rawHeaders[i]!.toLowerCase())) headers.push(ctx.rawHeaders[i]!, ctx.rawHeaders[i + 1]!);
  }
  for (const [name, value] of ctx.setHeaders) headers.push(name, value);
  if (ctx.body !== undefined) {
    for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i]!.toLowerCase() === 'content-length') headers.splice(i, 2);
    headers.push('content-length', String(ctx.body.length));
  }
  return new Promise((resolve, reject) => {
    const upstream = http.request({ host: '127.0.0.1', port: appPort, method: ctx.request.method, path: ctx.request.path, headers }, resolve);
    upstream.on('error', reject);
    if (ctx.body !== undefined) upstream.end(ctx.body);
    else req.pipe(upstream);
  });
}

/** The whole body, or undefined when it is longer than `cap` (what was read is dropped). */
async function readUpTo(stream: IncomingMessage, cap: number): Promise<Buffer | undefined> {
  const { body } = await readResponseUpTo(stream, cap);
  if (body === undefined) stream.resume();
  return body;
}

/** The whole body, or (over `cap`) undefined and what was read so far, the stream paused after it. */
function readResponseUpTo(stream: IncomingMessage, cap: number): Promise<{ body: Buffer | undefined; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > cap) {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.pause();
        resolve({ body: undefined, rest: Buffer.concat(chunks) });
      }
    };
    const onEnd = () => resolve({ body: Buffer.concat(chunks), rest: Buffer.alloc(0) });
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', reject);
  });
}

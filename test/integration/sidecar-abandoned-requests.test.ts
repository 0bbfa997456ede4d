import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { stopChild, tempDir } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';
import { connected, connectH2, identityOf, rapidReset, type MtlsIdentity } from '../helpers/h2-client.js';
import { httpRequest, makeMesh, ORDERS_ID, runSidecar, WEB_ID, type Mesh, type RunningSidecar, type SvidFiles } from '../helpers/sidecar.js';

// Issue 13, item 2: a request whose client goes away early must not leave its upstream request open. Every way a
// downstream request can end early (an HTTP/2 stream reset at once, a gRPC-style cancel while the app is slow, the
// HTTP/2 connection dropped, an HTTP/1.1 client disconnecting) × both listeners (inbound → app, outbound → the
// destination sidecar → app) × both app protocols (HTTP/1.1 through undici, h2c): the app must see each of its
// requests closed soon after, long before any timeout would have closed it (requestTimeout is the default 30 s).

const POLICY = `
defaultAction: deny
rules:
  - name: web-reads-orders
    action: allow
    from: { principals: ["${WEB_ID}"] }
    to: { paths: ["/api/orders/**"] }
`;

/** Requests per case; each would hold an app connection (HTTP/1.1) or stream (h2c) while it is left open. */
const PER_CASE = 20;
/** Far below requestTimeout (30 s): a request closed within this was closed because its client went away. */
const RELEASE_MS = 4000;

/** An app that never answers /api/orders/hang, and counts by case the requests that reached it and are still open. */
class HangingApps {
  readonly arrived = new Map<string, number>();
  readonly open = new Map<string, number>();
  http: http.Server | undefined;
  h2c: http2.Http2Server | undefined;

  async start(): Promise<{ http: number; h2c: number }> {
    const track = (url: string | undefined, onClose: (release: () => void) => void) => {
      const name = new URL(url ?? '/', 'http://x').searchParams.get('case') ?? '';
      this.arrived.set(name, (this.arrived.get(name) ?? 0) + 1);
      this.open.set(name, (this.open.get(name) ?? 0) + 1);
      onClose(() => this.open.set(name, this.open.get(name)! - 1));
    };
    const app = http.createServer((req, res) => track(req.url, (release) => res.once('close', release)));
    const h2c = http2.createServer();
    this.http = app;
    this.h2c = h2c;
    h2c.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      track(String(headers[':path']), (release) => stream.once('close', release));
    });
    await Promise.all([new Promise<void>((r) => app.listen(0, '127.0.0.1', r)), new Promise<void>((r) => h2c.listen(0, '127.0.0.1', r))]);
    return { http: (app.address() as AddressInfo).port, h2c: (h2c.address() as AddressInfo).port };
  }

  arrivedFor = (name: string) => this.arrived.get(name) ?? 0;
  openFor = (name: string) => this.open.get(name) ?? 0;

  close(): void {
    this.http?.closeAllConnections();
    this.http?.close();
    this.h2c?.close();
  }
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

const { dir, cleanup } = tempDir();
let mesh: Mesh;
let ordersSvid: SvidFiles;
let webSvid: SvidFiles;

beforeAll(async () => {
  mesh = await makeMesh(dir);
  [ordersSvid, webSvid] = await Promise.all([mesh.issue('orders', ORDERS_ID), mesh.issue('web', WEB_ID)]);
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
});
afterAll(cleanup);

/** An inbound sidecar with orders' SVID in front of `app`. */
function runInbound(name: string, app: string, extra: object = {}, env: NodeJS.ProcessEnv = {}): Promise<RunningSidecar> {
  return runSidecar(
    dir,
    name,
    {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app, policy: join(dir, 'policy.yaml') },
      admin: { listen: '127.0.0.1:0' },
      ...extra,
    },
    env,
  );
}

/** An outbound sidecar with web's SVID and routes host → inbound address. */
function runOutbound(name: string, routes: Record<string, string>, extra: object = {}): Promise<RunningSidecar> {
  return runSidecar(dir, name, {
    trustDomain: TD,
    identity: { files: { cert: webSvid.cert, key: webSvid.key, bundle: mesh.bundle } },
    outbound: { listen: '127.0.0.1:0', routes: Object.entries(routes).map(([host, address]) => ({ host, address, spiffeId: ORDERS_ID })) },
    admin: { listen: '127.0.0.1:0' },
    ...extra,
  });
}

type Listener = 'inbound' | 'outbound';
type AppProtocol = 'http' | 'h2c';
type Ending = 'reset at once' | 'cancel while waiting' | 'session destroyed' | 'HTTP/1.1 disconnect';

describe('sidecar: a request whose client goes away early releases its upstream request (issue 13, item 2)', () => {
  const apps = new HangingApps();
  let web: RunningSidecar;
  const inbound: Partial<Record<AppProtocol, RunningSidecar>> = {};
  let client: MtlsIdentity;

  beforeAll(async () => {
    const ports = await apps.start();
    [inbound.http, inbound.h2c] = await Promise.all([runInbound('orders-http', `http://127.0.0.1:${ports.http}`), runInbound('orders-h2c', `h2c://127.0.0.1:${ports.h2c}`)]);
    web = await runOutbound('web', { 'orders-http': inbound.http!.inbound!, 'orders-h2c': inbound.h2c!.inbound! });
    client = identityOf(dir, 'web', mesh.bundle);
  });

  afterAll(async () => {
    await Promise.all([web?.stop(), inbound.http?.stop(), inbound.h2c?.stop()]);
    apps.close();
  });

  /** Where a client of `listener` connects, and the :authority / Host that reaches the app of `app`. */
  const target = (listener: Listener, app: AppProtocol) =>
    listener === 'inbound' ? { address: inbound[app]!.inbound!, authority: 'orders', identity: client } : { address: web.outbound!, authority: `orders-${app}` };

  async function h2Case(listener: Listener, app: AppProtocol, ending: Exclude<Ending, 'HTTP/1.1 disconnect'>, name: string): Promise<void> {
    const { address, authority, identity } = target(listener, app);
    const session = connectH2(address, identity);
    await connected(session);
    const headers = { ':authority': authority, ':path': `/api/orders/hang?case=${encodeURIComponent(name)}` };
    try {
      if (ending === 'reset at once') {
        expect(await rapidReset(session, headers, PER_CASE)).toBe(PER_CASE);
        // Give them time to reach the app if they are going to: each one that does must be closed again.
        await eventually(() => apps.arrivedFor(name) >= PER_CASE, 1000);
        return;
      }
      const streams = Array.from({ length: PER_CASE }, () => {
        const stream = session.request({ ':method': 'GET', ...headers }, { endStream: true });
        stream.on('error', () => undefined);
        return stream;
      });
      expect(await eventually(() => apps.arrivedFor(name) === PER_CASE, 5000), `${apps.arrivedFor(name)} of ${PER_CASE} arrived`).toBe(true);
      if (ending === 'cancel while waiting') for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
      else session.destroy();
    } finally {
      if (ending !== 'session destroyed') await eventually(() => apps.openFor(name) === 0, RELEASE_MS);
      session.destroy();
    }
  }

  async function http1Case(listener: Listener, app: AppProtocol, name: string): Promise<void> {
    const { address, authority, identity } = target(listener, app);
    const sockets = Array.from({ length: PER_CASE / 4 }, () => {
      const socket = identity ? tls.connect({ ...splitAddress(address), ...identity, servername: 'localhost', ALPNProtocols: ['http/1.1'] }) : net.connect(splitAddress(address));
      socket.on('error', () => undefined);
      socket.write(`GET /api/orders/hang?case=${encodeURIComponent(name)} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      return socket;
    });
    expect(await eventually(() => apps.arrivedFor(name) === sockets.length, 5000)).toBe(true);
    for (const socket of sockets) socket.destroy();
  }

  const cases: Array<[Listener, AppProtocol, Ending]> = [];
  for (const listener of ['inbound', 'outbound'] as const) {
    for (const app of ['http', 'h2c'] as const) {
      for (const ending of ['reset at once', 'cancel while waiting', 'session destroyed', 'HTTP/1.1 disconnect'] as const) cases.push([listener, app, ending]);
    }
  }

  it.each(cases)('%s listener, %s app: %s → the app sees its request closed', async (listener, app, ending) => {
    const name = `${listener}-${app}-${ending}`;
    if (ending === 'HTTP/1.1 disconnect') await http1Case(listener, app, name);
    else await h2Case(listener, app, ending, name);
    const released = await eventually(() => apps.openFor(name) === 0, RELEASE_MS);
    expect(released, `${apps.openFor(name)} of ${apps.arrivedFor(name)} requests still open at the app`).toBe(true);
  });

  it('records every one of them as cut off by the client (status 0), never as an upstream failure', async () => {
    for (const sidecar of [inbound.http!, inbound.h2c!, web]) {
      const metrics = (await httpRequest(sidecar.admin, '/metrics')).body;
      const failures = metrics.split('\n').filter((line) => /^meshward_requests_total\{.*status="5\d\d"\}/.test(line));
      expect(failures, sidecar.configFile).toEqual([]);
      expect(metrics).toMatch(/^meshward_requests_total\{direction="(inbound|outbound)",decision="(allow|none)",status="0"\} [1-9]/m);
    }
  });
});

describe('sidecar: a drain ends by its deadline, whatever is still open (issue 13, item 2)', () => {
  const apps = new HangingApps();
  const DRAIN_MS = 1000;
  /** Start-up of the exit path and scheduling on a loaded machine; far below the 65 s the issue saw. */
  const EXIT_MARGIN_MS = 3000;
  /** src/cli/sidecar.ts: what a shutdown may take past drainTimeout before the process exits regardless. */
  const SHUTDOWN_GRACE_MS = 5000;
  const open: Array<{ destroy(): void }> = [];

  afterAll(() => {
    for (const thing of open) thing.destroy();
    apps.close();
  });

  it('SIGTERM with slow HTTP/2 streams, HTTP/1.1 requests and idle connections open on both listeners: exits 0 within drainTimeout', async () => {
    const ports = await apps.start();
    const drain = { drainTimeout: `${DRAIN_MS}ms` };
    const ordersSidecar = await runInbound('drain-orders', `http://127.0.0.1:${ports.http}`, drain);
    const web = await runOutbound('drain-web', { orders: ordersSidecar.inbound! }, drain);
    const client = identityOf(dir, 'web', mesh.bundle);
    const path = (name: string) => `/api/orders/hang?case=drain-${name}`;

    const direct = connectH2(ordersSidecar.inbound!, client);
    const viaWeb = connectH2(web.outbound!);
    const idle = [connectH2(ordersSidecar.inbound!, client), connectH2(web.outbound!)];
    open.push(direct, viaWeb, ...idle);
    await Promise.all([direct, viaWeb, ...idle].map(connected));
    for (let i = 0; i < 10; i++) {
      for (const session of [direct, viaWeb]) session.request({ ':method': 'GET', ':authority': 'orders', ':path': path('h2') }).on('error', () => undefined);
    }
    for (const address of [ordersSidecar.inbound!, web.outbound!]) {
      const socket = address === web.outbound
        ? net.connect(splitAddress(address))
        : tls.connect({ ...splitAddress(address), ...client, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => undefined);
      socket.write(`GET ${path('h1')} HTTP/1.1\r\nHost: orders\r\n\r\n`);
      open.push(socket);
    }
    expect(await eventually(() => apps.arrivedFor('drain-h2') === 20 && apps.arrivedFor('drain-h1') === 2, 5000)).toBe(true);

    const started = performance.now();
    const [ordersExit, webExit] = await Promise.all([stopChild(ordersSidecar.child, 'SIGTERM'), stopChild(web.child, 'SIGTERM')]);
    const elapsed = performance.now() - started;
    expect({ ordersExit, webExit }).toEqual({ ordersExit: 0, webExit: 0 });
    expect(elapsed).toBeGreaterThanOrEqual(DRAIN_MS - 50);
    expect(elapsed).toBeLessThan(DRAIN_MS + EXIT_MARGIN_MS);
    expect(await eventually(() => apps.openFor('drain-h2') + apps.openFor('drain-h1') === 0)).toBe(true);
  });

  it('exits by drainTimeout + a short grace even when a shutdown step hangs (a trace exporter whose collector never answers)', async () => {
    // A collector that accepts connections and never answers: flushing the buffered span at shutdown would wait
    // for the exporter's own timeout (set to two minutes here).
    const collector = net.createServer((socket) => open.push(socket));
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    open.push({ destroy: () => collector.close() });
    const sidecar = await runInbound('hung-exporter', 'http://127.0.0.1:1', { drainTimeout: `${DRAIN_MS}ms` }, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '120000',
      OTEL_BSP_EXPORT_TIMEOUT: '120000',
      OTEL_BSP_SCHEDULE_DELAY: '120000',
    });
    // One request (refused by the policy: orders may not call itself) leaves a span in the exporter's buffer.
    const socket = tls.connect({ ...splitAddress(sidecar.inbound!), ...identityOf(dir, 'orders', mesh.bundle), servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    socket.on('error', () => undefined);
    open.push(socket);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write('GET /admin HTTP/1.1\r\nHost: orders\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));

    const started = performance.now();
    const code = await stopChild(sidecar.child, 'SIGTERM');
    const elapsed = performance.now() - started;
    expect(code).toBe(1);
    expect(sidecar.output()).toContain('shutdown overran the drain timeout; exiting now');
    expect(elapsed).toBeLessThan(DRAIN_MS + SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS);
  });
});

import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, runPair, runSidecar, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

// Issue 4's inbound limits and issue 5's faults, against real processes: the orders inbound runs with small limits,
// and is driven over mTLS with raw HTTP/1.1 bytes (every byte is ours), and through web's outbound. Each abuse case
// also shows a normal request on another connection being served at the same time.

const LIMITS = {
  maxHeaderBytes: 8192,
  maxBodyBytes: 65536,
  headersTimeout: '1s',
  requestTimeout: '2s',
  handshakeTimeout: '1s',
  idleTimeout: '5s',
  maxConnections: 50,
};
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const HANDSHAKE_TIMEOUT_MS = 1000;
/** Scheduling slack on a loaded two-core CI machine; far below Node's 30 s defaults that a missing limit falls back to. */
const MARGIN_MS = 1500;

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  /** The whole body arrived. */
  complete: boolean;
  /** The body ended or the request was cut off: nothing more will arrive. */
  settled: boolean;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
  complete: boolean;
}

interface Talk {
  data: Buffer;
  /** The peer closed the connection (or reset it) within the wait. */
  closed: boolean;
  /** The TLS handshake finished. */
  secure: boolean;
  error?: string;
  elapsedMs: number;
  response: Parsed | undefined;
}

/** The first HTTP/1.1 response in `buf`, as far as it has arrived. */
function parseResponse(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = buf.subarray(end + 4);
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd === -1) return { status, headers, body: Buffer.concat(parts).toString(), complete: false };
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(parts).toString(), complete: true };
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return { status, headers, body: rest.subarray(0, length).toString(), complete: rest.length >= length };
  }
  return { status, headers, body: rest.toString(), complete: false };
}

/**
 * Runs `script` on a fresh connection and collects what comes back, until the peer closes it, or (with
 * `untilResponse`) a whole response has arrived, or `waitMs` passes: every wait is bounded.
 */
function talk(
  socket: net.Socket,
  script: (socket: net.Socket, closed: () => boolean) => void | Promise<void>,
  options: { waitMs: number; untilResponse?: boolean },
): Promise<Talk> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    let secure = false;
    let error: string | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      const result: Talk = { data, closed, secure, elapsedMs: performance.now() - started, response: parseResponse(data) };
      if (error !== undefined) result.error = error;
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, options.waitMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.untilResponse && parseResponse(Buffer.concat(chunks))?.complete) finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    const run = () => {
      Promise.resolve(script(socket, () => closed || done)).catch((err: unknown) => {
        error = (err as Error).message;
      });
    };
    if (socket instanceof tls.TLSSocket) {
      socket.once('secureConnect', () => {
        secure = true;
        run();
      });
    } else {
      run();
    }
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds or `ms` pass; for state another process changes (the app sees a request later). */
async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

describe('sidecar: limits and faults (issues 4 and 5)', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  let appPort: number;
  let closedPort: number;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  /** A second inbound for the same app with the same limits, that only the connection-cap case connects to. */
  let spare: RunningSidecar;
  /** An inbound whose app port is closed. */
  let down: RunningSidecar;
  let client: { cert: Buffer; key: Buffer; ca: Buffer };
  const seen: Seen[] = [];
  const appSockets = new Set<net.Socket>();

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      const record: Seen = { url: req.url ?? '', headers: req.headers, bytes: 0, complete: false, settled: false };
      seen.push(record);
      const path = record.url.split('?')[0];
      req.on('data', (chunk: Buffer) => (record.bytes += chunk.length));
      req.once('close', () => (record.settled = true));
      req.on('end', () => {
        record.complete = true;
        record.settled = true;
        if (path === '/api/orders/echo') res.end(String(record.bytes));
        else if (path === '/api/orders/headers') res.end(JSON.stringify(req.headers));
        else if (path === '/api/orders/slow') {
          const timer = setTimeout(() => res.end('late'), REQUEST_TIMEOUT_MS * 2);
          res.once('close', () => clearTimeout(timer));
        } else res.end('ok');
      });
    });
    app.on('connection', (socket: net.Socket) => {
      appSockets.add(socket);
      socket.once('close', () => appSockets.delete(socket));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    mesh = await makeMesh(dir);
    const appUrl = `http://127.0.0.1:${appPort}`;
    ({ orders, web } = await runPair(mesh, { app: appUrl, inboundExtra: { limits: LIMITS } }));
    const inboundOf = (name: string, target: string) =>
      runSidecar(dir, name, {
        trustDomain: TD,
        identity: { files: { cert: join(dir, 'orders.pem'), key: join(dir, 'orders.key'), bundle: mesh.bundle } },
        inbound: { listen: '127.0.0.1:0', app: target, policy: join(dir, 'policy.yaml'), limits: LIMITS },
        admin: { listen: '127.0.0.1:0' },
      });
    [spare, down] = await Promise.all([inboundOf('spare', appUrl), inboundOf('down', `http://127.0.0.1:${closedPort}`)]);
    client = { cert: readFileSync(join(dir, 'web.pem')), key: readFileSync(join(dir, 'web.key')), ca: readFileSync(mesh.bundle) };
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop(), spare?.stop(), down?.stop()]);
    for (const socket of appSockets) socket.destroy();
    app?.close();
    cleanup();
  });

  /** An mTLS connection to an inbound with web's SVID, HTTP/1.1 by ALPN. */
  const connectTls = (address: string) =>
    tls.connect({ ...splitAddress(address), ...client, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  const connectTcp = (address: string) => net.connect(splitAddress(address));
  const send = (bytes: string | Buffer) => (socket: net.Socket) => void socket.write(bytes);

  /** A normal request on its own connection to the orders inbound: 200 from the app. */
  async function normalDirect(address = orders.inbound!): Promise<Talk> {
    return talk(connectTls(address), send('GET /api/orders/ok?case=normal HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n'), {
      waitMs: 5000,
      untilResponse: true,
    });
  }

  async function expectNormalDirect(address?: string): Promise<void> {
    const res = await normalDirect(address);
    expect(res.response?.status, res.data.toString()).toBe(200);
    expect(res.response?.body).toBe('ok');
  }

  async function expectNormalViaWeb(): Promise<void> {
    const res = await httpRequest(web.outbound!, '/api/orders/ok?case=normal-web', { headers: { host: 'orders' } });
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok');
  }

  const seenFor = (marker: string) => seen.filter((s) => s.url.includes(`case=${marker}`));

  /** Nothing in a local reply that says how the sidecar is built or where the app is. */
  function expectNoInternals(body: string): void {
    expect(body).not.toContain('127.0.0.1');
    expect(body).not.toContain('localhost');
    expect(body).not.toContain(String(appPort));
    expect(body).not.toContain(String(closedPort));
    expect(body).not.toContain(splitAddress(orders.inbound!).port.toString());
    expect(body).not.toMatch(/ECONNREFUSED|ECONNRESET|UND_ERR|ETIMEDOUT|Error:|\n\s+at |node:|\.js:\d+/);
  }

  it('serves a normal request directly over mTLS and through web (the baseline for every case below)', async () => {
    await expectNormalDirect();
    await expectNormalViaWeb();
  });

  describe('oversized headers', () => {
    it('refuses headers over maxHeaderBytes with 431 and closes the connection, while another client is served', async () => {
      const big = `GET /api/orders/ok?case=big-headers HTTP/1.1\r\nHost: orders\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`;
      const [res] = await Promise.all([talk(connectTls(orders.inbound!), send(big), { waitMs: 3000 }), expectNormalDirect()]);
      expect(res.closed).toBe(true);
      expect(res.response?.status).toBe(431);
      expect(seenFor('big-headers')).toHaveLength(0);
    });

    it('accepts headers under the cap', async () => {
      const res = await talk(
        connectTls(orders.inbound!),
        send(`GET /api/orders/ok?case=fair-headers HTTP/1.1\r\nHost: orders\r\nX-Fair: ${'a'.repeat(6000)}\r\nConnection: close\r\n\r\n`),
        { waitMs: 3000, untilResponse: true },
      );
      expect(res.response?.status).toBe(200);
      expect(seenFor('fair-headers')).toHaveLength(1);
    });
  });

  describe('request bodies', () => {
    it('refuses a declared 10 GB body with 413 at once and closes the connection; the app is never reached', async () => {
      const head = 'POST /api/orders/echo?case=huge HTTP/1.1\r\nHost: orders\r\nContent-Length: 10737418240\r\n\r\n';
      const [res] = await Promise.all([talk(connectTls(orders.inbound!), send(head), { waitMs: 3000 }), expectNormalDirect()]);
      expect(res.response?.status).toBe(413);
      expect(JSON.parse(res.response!.body)).toMatchObject({ error: 'payload_too_large', limitBytes: 65536 });
      expectNoInternals(res.response!.body);
      expect(res.closed).toBe(true);
      expect(res.elapsedMs).toBeLessThan(MARGIN_MS);
      expect(seenFor('huge')).toHaveLength(0);
    });

    it('refuses a chunked body that grows over maxBodyBytes (413 or cut off); the app never gets it whole', async () => {
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const script = async (socket: net.Socket, closed: () => boolean) => {
        socket.write('POST /api/orders/echo?case=chunked-over HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n');
        // 80 KiB in 16 KiB chunks, then the last chunk: over the 64 KiB cap.
        for (let i = 0; i < 5 && !closed(); i++) {
          socket.write(`${chunk.length.toString(16)}\r\n`);
          socket.write(chunk);
          socket.write('\r\n');
          await sleep(10);
        }
        if (!closed()) socket.write('0\r\n\r\n');
      };
      const [res] = await Promise.all([talk(connectTls(orders.inbound!), script, { waitMs: 5000 }), expectNormalDirect()]);
      expect(res.closed).toBe(true);
      if (res.response !== undefined) {
        expect(res.response.status).toBe(413);
        expectNoInternals(res.response.body);
      }
      // Whatever reached the app stops short of the whole body.
      expect(await eventually(() => seenFor('chunked-over').every((s) => s.settled))).toBe(true);
      expect(seenFor('chunked-over').filter((s) => s.complete)).toHaveLength(0);
      expect(Math.max(0, ...seenFor('chunked-over').map((s) => s.bytes))).toBeLessThanOrEqual(65536);
    });

    it('forwards a chunked body under the cap whole', async () => {
      const body = Buffer.alloc(32 * 1024, 'y');
      const request = Buffer.concat([
        Buffer.from('POST /api/orders/echo?case=chunked-under HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'),
        Buffer.from(`${(body.length / 2).toString(16)}\r\n`),
        body.subarray(0, body.length / 2),
        Buffer.from(`\r\n${(body.length / 2).toString(16)}\r\n`),
        body.subarray(body.length / 2),
        Buffer.from('\r\n0\r\n\r\n'),
      ]);
      const res = await talk(connectTls(orders.inbound!), send(request), { waitMs: 5000, untilResponse: true });
      expect(res.response?.status).toBe(200);
      expect(res.response?.body).toBe(String(body.length));
      expect(seenFor('chunked-under')).toMatchObject([{ bytes: body.length, complete: true }]);
    });
  });

  describe('request smuggling shapes', () => {
    const shapes: Array<[string, string]> = [
      ['cl-te', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
      ['te-cl', 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n'],
      ['cl-cl', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
      ['te-not-chunked-last', 'Transfer-Encoding: chunked, identity\r\n'],
    ];
    it.each(shapes)('refuses %s with 400 and the app never sees it, nor the request hidden behind it', async (name, framing) => {
      const smuggled = `GET /api/orders/ok?case=${name}-smuggled HTTP/1.1\r\nHost: orders\r\n\r\n`;
      const bytes = `POST /api/orders/echo?case=${name} HTTP/1.1\r\nHost: orders\r\n${framing}\r\n0\r\n\r\n${smuggled}`;
      const [res] = await Promise.all([talk(connectTls(orders.inbound!), send(bytes), { waitMs: 3000 }), expectNormalDirect()]);
      expect(res.response?.status).toBe(400);
      expect(res.closed).toBe(true);
      expect(res.data.toString()).not.toMatch(/HTTP\/1\.1 200/);
      expect(seenFor(name)).toHaveLength(0);
    });
  });

  it('refuses two Host headers with 400 (the policy would judge one, the app see another), and the app never sees it', async () => {
    const bytes = 'GET /api/orders/ok?case=two-hosts HTTP/1.1\r\nHost: orders\r\nHost: admin\r\n\r\n';
    const [res] = await Promise.all([talk(connectTls(orders.inbound!), send(bytes), { waitMs: 3000, untilResponse: true }), expectNormalDirect()]);
    expect(res.response?.status).toBe(400);
    expect(res.data.toString()).toContain('more than one Host header');
    expect(seenFor('two-hosts')).toHaveLength(0);
  });

  it('serves a request line that says HTTP/2.0 on an HTTP/1.1 connection as HTTP/1.1, and stays up', async () => {
    // Node's parser reports version 2 for it; nothing may take that for an HTTP/2 stream (it once crashed the sidecar).
    const bytes = 'GET /api/orders/ok?case=h2-line HTTP/2.0\r\nHost: orders\r\nContent-Length: 0\r\n\r\n';
    const res = await talk(connectTls(orders.inbound!), send(bytes), { waitMs: 3000, untilResponse: true });
    expect(res.response?.status).toBe(200);
    expect(orders.child.exitCode).toBeNull();
    await expectNormalDirect();
    await expectNormalViaWeb();
  });

  describe('slow clients', () => {
    it('cuts off a slow-loris client within headersTimeout, while normal requests are served meanwhile', async () => {
      let dripped = 0;
      const drip = async (socket: net.Socket, closed: () => boolean) => {
        socket.write('GET /api/orders/ok?case=loris HTTP/1.1\r\nHost: orders\r\nX-Drip: ');
        // One header byte every 200 ms, for far longer than headersTimeout: only the sidecar can end this.
        while (!closed() && dripped < 50) {
          await sleep(200);
          if (!closed()) socket.write('a');
          dripped += 1;
        }
      };
      const loris = talk(connectTls(orders.inbound!), drip, { waitMs: HEADERS_TIMEOUT_MS + MARGIN_MS });
      await sleep(300);
      await expectNormalDirect();
      await expectNormalViaWeb();
      const res = await loris;
      expect(dripped).toBeGreaterThan(1);
      expect(res.closed, `still open after ${Math.round(res.elapsedMs)} ms and ${dripped} bytes`).toBe(true);
      expect(res.elapsedMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
      if (res.response !== undefined) expect(res.response.status).toBe(408);
      expect(seenFor('loris')).toHaveLength(0);
    });

    it('closes connections that never send a TLS ClientHello after handshakeTimeout, while another client is served', async () => {
      const silent = Array.from({ length: 3 }, () => talk(connectTcp(orders.inbound!), () => undefined, { waitMs: HANDSHAKE_TIMEOUT_MS + MARGIN_MS }));
      await sleep(200);
      await expectNormalDirect();
      for (const res of await Promise.all(silent)) {
        expect(res.closed).toBe(true);
        expect(res.elapsedMs).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
        expect(res.data.length).toBe(0);
      }
    });
  });

  describe('clients that stop half-way through a body', () => {
    it.each([
      ['h1-cut-length', 'Content-Length: 20480\r\n', Buffer.alloc(10240, 'c')],
      ['h1-cut-chunked', 'Transfer-Encoding: chunked\r\n', Buffer.concat([Buffer.from('2800\r\n'), Buffer.alloc(10240, 'c'), Buffer.from('\r\n')])],
    ])('HTTP/1.1 %s: the app sees the request cut off, never complete', async (name, framing, part) => {
      const socket = connectTls(orders.inbound!);
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      socket.write(`POST /api/orders/echo?case=${name} HTTP/1.1\r\nHost: orders\r\n${framing}\r\n`);
      socket.write(part);
      expect(await eventually(() => (seenFor(name)[0]?.bytes ?? 0) >= 10240)).toBe(true);
      socket.destroy();
      await expectNormalDirect();
      expect(await eventually(() => seenFor(name)[0]!.settled)).toBe(true);
      expect(seenFor(name)[0]).toMatchObject({ complete: false, bytes: 10240 });
    });
  });

  describe('hop-by-hop headers', () => {
    const hopHeaders =
      'Connection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=99\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\nTE: trailers, deflate\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n';
    const hopNames = ['x-secret', 'keep-alive', 'proxy-authorization', 'te', 'upgrade', 'proxy-connection'];

    it('strips them before the app, on a direct mTLS request', async () => {
      const res = await talk(connectTls(orders.inbound!), send(`GET /api/orders/headers?case=hop-direct HTTP/1.1\r\nHost: orders\r\n${hopHeaders}\r\n`), {
        waitMs: 3000,
        untilResponse: true,
      });
      expect(res.response?.status).toBe(200);
      const [received] = seenFor('hop-direct');
      expect(received?.headers['x-kept']).toBe('yes');
      for (const name of hopNames) expect(received?.headers, name).not.toHaveProperty(name);
      expect(received?.headers.connection ?? '').not.toContain('x-secret');
    });

    it('strips them through web and orders', async () => {
      const res = await talk(connectTcp(web.outbound!), send(`GET /api/orders/headers?case=hop-web HTTP/1.1\r\nHost: orders\r\n${hopHeaders}\r\n`), {
        waitMs: 3000,
        untilResponse: true,
      });
      expect(res.response?.status).toBe(200);
      const [received] = seenFor('hop-web');
      expect(received?.headers['x-kept']).toBe('yes');
      for (const name of hopNames) expect(received?.headers, name).not.toHaveProperty(name);
    });

    it('treats an Upgrade the sidecar does not serve as an ordinary request, without passing Upgrade on', async () => {
      const res = await talk(
        connectTls(orders.inbound!),
        send('GET /api/orders/headers?case=hop-upgrade HTTP/1.1\r\nHost: orders\r\nConnection: Upgrade, x-secret\r\nUpgrade: websocket\r\nX-Secret: 1\r\n\r\n'),
        { waitMs: 3000, untilResponse: true },
      );
      // No upgrade handler: an ordinary request, answered as one (never a 101), and the app never sees the upgrade.
      expect(res.response?.status).toBe(200);
      const [received] = seenFor('hop-upgrade');
      expect(received?.headers).not.toHaveProperty('upgrade');
      expect(received?.headers).not.toHaveProperty('x-secret');
      expect(received?.headers.connection ?? '').not.toMatch(/upgrade/i);
    });
  });

  describe('app faults', () => {
    it('answers a slow app with 504 after requestTimeout, a generic JSON body, while another client is served', async () => {
      const slow = talk(connectTls(orders.inbound!), send('GET /api/orders/slow?case=slow-direct HTTP/1.1\r\nHost: orders\r\n\r\n'), {
        waitMs: REQUEST_TIMEOUT_MS + MARGIN_MS,
        untilResponse: true,
      });
      await sleep(200);
      await expectNormalDirect();
      const res = await slow;
      expect(res.response?.status, res.data.toString()).toBe(504);
      expect(res.elapsedMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(res.response?.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.response!.body)).toMatchObject({ error: 'gateway_timeout' });
      expectNoInternals(res.response!.body);
    });

    it('answers 504 through web as well', async () => {
      const [res] = await Promise.all([
        httpRequest(web.outbound!, '/api/orders/slow?case=slow-web', { headers: { host: 'orders' } }),
        sleep(200).then(expectNormalViaWeb),
      ]);
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'gateway_timeout' });
      expectNoInternals(res.body);
    });

    it('answers 503 with a generic JSON body when the app is down, revealing neither its address nor the error', async () => {
      const [res] = await Promise.all([normalDirect(down.inbound!), expectNormalDirect()]);
      expect(res.response?.status).toBe(503);
      expect(res.response?.headers['content-type']).toMatch(/^application\/json/);
      const body = JSON.parse(res.response!.body) as Record<string, unknown>;
      expect(body).toMatchObject({ error: 'unavailable' });
      expect(Object.keys(body).sort()).toEqual(['error', 'reason', 'requestId']);
      expect(res.response!.body).not.toContain(`127.0.0.1:${closedPort}`);
      expectNoInternals(res.response!.body);
    });
  });

  describe('connection cap', () => {
    it('refuses the connection over maxConnections, and serves a new one once some close', async () => {
      const sockets: tls.TLSSocket[] = [];
      try {
        // Fifty keep-alive connections, each served once and then left open (idle, within idleTimeout).
        const opened = await Promise.all(
          Array.from({ length: LIMITS.maxConnections }, () => {
            const socket = connectTls(spare.inbound!);
            sockets.push(socket);
            return new Promise<number>((resolve) => {
              let buf = Buffer.alloc(0);
              const timer = setTimeout(() => resolve(0), 5000);
              socket.on('error', () => undefined);
              socket.once('secureConnect', () => socket.write('GET /api/orders/ok?case=cap HTTP/1.1\r\nHost: orders\r\n\r\n'));
              socket.on('data', (chunk: Buffer) => {
                buf = Buffer.concat([buf, chunk]);
                const res = parseResponse(buf);
                if (res?.complete) {
                  clearTimeout(timer);
                  resolve(res.status);
                }
              });
            });
          }),
        );
        expect(opened.filter((status) => status === 200)).toHaveLength(LIMITS.maxConnections);

        const over = await normalDirect(spare.inbound!);
        expect(over.secure).toBe(false);
        expect(over.closed).toBe(true);
        expect(over.response).toBeUndefined();
        // Issue 13: a listener that refuses new connections is not ready.
        const full = await httpRequest(spare.admin, '/readyz');
        expect(full.status).toBe(503);
        expect(JSON.parse(full.body)).toEqual({ status: 'not ready', reason: `the inbound listener holds ${LIMITS.maxConnections} connections, its limits.maxConnections` });
        // Another listener is untouched by this one's cap.
        await expectNormalDirect();

        for (const socket of sockets.splice(0, 5)) socket.destroy();
        let served: Talk | undefined;
        for (let attempt = 0; attempt < 20 && served?.response?.status !== 200; attempt++) {
          if (attempt > 0) await sleep(50);
          served = await normalDirect(spare.inbound!);
        }
        expect(served?.response?.status).toBe(200);
        expect((await httpRequest(spare.admin, '/readyz')).status).toBe(200);
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });
  });

  describe('HTTP/2 on the inbound', () => {
    let session: http2.ClientHttp2Session;
    beforeAll(async () => {
      session = http2.connect(`https://${orders.inbound!}`, { ...client, servername: 'localhost' });
      await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
    });
    afterAll(() => session?.destroy());

    interface H2Answer {
      status: number;
      body: string;
      error?: string;
    }

    /** One stream; resolves when the answer has ended or the stream failed, within a bounded wait. */
    function h2Request(on: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer, end = true): Promise<H2Answer> {
      return new Promise((resolve) => {
        const stream = on.request({ ':method': 'POST', ':authority': 'orders', ...headers }, { endStream: false });
        let status = 0;
        let data = '';
        const finish = (error?: string) => {
          clearTimeout(timer);
          resolve({ status, body: data, ...(error !== undefined ? { error } : {}) });
        };
        const timer = setTimeout(() => {
          stream.destroy();
          finish('timeout');
        }, 5000);
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (d: Buffer) => (data += d.toString()));
        stream.on('error', (err: Error) => finish(err.message));
        stream.on('end', () => finish());
        stream.on('close', () => finish());
        if (end) stream.end(body);
        else if (body) stream.write(body);
      });
    }

    it('refuses a declared 10 GB body with 413 at once; the app is never reached', async () => {
      const [res] = await Promise.all([
        h2Request(session, { ':path': '/api/orders/echo?case=h2-huge', 'content-length': '10737418240' }, Buffer.alloc(1024), false),
        expectNormalDirect(),
      ]);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'payload_too_large', limitBytes: 65536 });
      expect(seenFor('h2-huge')).toHaveLength(0);
    });

    it('refuses a streamed body over the cap with 413; the app never gets it whole; under the cap it arrives whole', async () => {
      const [over] = await Promise.all([h2Request(session, { ':path': '/api/orders/echo?case=h2-over' }, Buffer.alloc(80 * 1024, 'q')), expectNormalDirect()]);
      expect(over.status).toBe(413);
      expectNoInternals(over.body);
      expect(await eventually(() => seenFor('h2-over').every((s) => s.settled))).toBe(true);
      expect(seenFor('h2-over').filter((s) => s.complete)).toHaveLength(0);

      const under = await h2Request(session, { ':path': '/api/orders/echo?case=h2-under' }, Buffer.alloc(30 * 1024, 'q'));
      expect(under).toMatchObject({ status: 200, body: String(30 * 1024) });
    });

    it('refuses headers over maxHeaderBytes', async () => {
      const [res] = await Promise.all([h2Request(session, { ':method': 'GET', ':path': '/api/orders/ok?case=h2-big', 'x-big': 'a'.repeat(9000) }), expectNormalDirect()]);
      expect(res.status === 431 || res.error !== undefined, JSON.stringify(res)).toBe(true);
      expect(seenFor('h2-big')).toHaveLength(0);
    });

    it('never hands the app a body that broke its own content-length as a complete request', async () => {
      // nghttp2 resets the stream (PROTOCOL_ERROR) when DATA overruns content-length.
      const own = http2.connect(`https://${orders.inbound!}`, { ...client, servername: 'localhost' });
      own.on('error', () => undefined);
      try {
        const [res] = await Promise.all([h2Request(own, { ':path': '/api/orders/echo?case=h2-lying', 'content-length': '10' }, Buffer.alloc(80 * 1024, 'q')), expectNormalDirect()]);
        expect(res.status).not.toBe(200);
        await eventually(() => seenFor('h2-lying').length > 0 && seenFor('h2-lying').every((s) => s.settled), 1000);
        expect(seenFor('h2-lying').filter((s) => s.complete), JSON.stringify(seenFor('h2-lying'))).toHaveLength(0);
      } finally {
        own.destroy();
      }
    });

    it.each([
      ['h2-cut-stream', 'resets the stream'],
      ['h2-cut-session', 'drops the connection'],
    ])('%s: a client that %s mid-upload never becomes a complete, shorter body at the app', async (name) => {
      const own = http2.connect(`https://${orders.inbound!}`, { ...client, servername: 'localhost' });
      own.on('error', () => undefined);
      const stream = own.request({ ':method': 'POST', ':authority': 'orders', ':path': `/api/orders/echo?case=${name}` }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(10 * 1024, 'c'));
      // The app is reading the body when the client goes.
      expect(await eventually(() => (seenFor(name)[0]?.bytes ?? 0) >= 10240)).toBe(true);
      if (name === 'h2-cut-stream') stream.destroy();
      else own.destroy();
      await expectNormalDirect();
      expect(await eventually(() => seenFor(name)[0]!.settled)).toBe(true);
      own.destroy();
      expect(seenFor(name)[0]).toMatchObject({ complete: false });
    });
  });

  describe('through web’s outbound', () => {
    it('refuses a declared 10 GB body at web itself with 413, at once', async () => {
      const [res] = await Promise.all([
        talk(connectTcp(web.outbound!), send('POST /api/orders/echo?case=huge-web HTTP/1.1\r\nHost: orders\r\nContent-Length: 10737418240\r\n\r\n'), {
          waitMs: 3000,
        }),
        expectNormalViaWeb(),
      ]);
      expect(res.response?.status).toBe(413);
      expect(JSON.parse(res.response!.body)).toMatchObject({ error: 'payload_too_large' });
      expect(res.closed).toBe(true);
      expect(res.elapsedMs).toBeLessThan(MARGIN_MS);
      expect(seenFor('huge-web')).toHaveLength(0);
    });

    it('relays orders’ 413 for a declared body under web’s cap but over orders’, every time', async () => {
      // orders refuses at the headers and closes while web is still sending the body. Unless orders lets the rest of
      // the body drain before it closes, the kernel resets the connection and web sees EPIPE before it reads the
      // 413 (then answers 503): a race, so the case is run enough times to lose it.
      const body = Buffer.alloc(4 * 1024 * 1024, 'z');
      const statuses: number[] = [];
      const normal = expectNormalViaWeb();
      for (let i = 0; i < 15; i++) {
        const request = Buffer.concat([Buffer.from(`POST /api/orders/echo?case=over-orders HTTP/1.1\r\nHost: orders\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
        const res = await talk(connectTcp(web.outbound!), send(request), { waitMs: 5000, untilResponse: true });
        statuses.push(res.response?.status ?? 0);
        if (res.response?.status === 413) {
          expect(JSON.parse(res.response.body)).toMatchObject({ error: 'payload_too_large', limitBytes: 65536 });
          expectNoInternals(res.response.body);
        }
      }
      await normal;
      expect(statuses).toEqual(statuses.map(() => 413));
      expect(seenFor('over-orders')).toHaveLength(0);
    });

    it('refuses a chunked body over orders’ cap sent through web (413 or cut off); the app never gets it whole', async () => {
      const chunk = Buffer.alloc(16 * 1024, 'w');
      const parts = [Buffer.from('POST /api/orders/echo?case=chunked-web HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n')];
      for (let i = 0; i < 5; i++) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
      parts.push(Buffer.from('0\r\n\r\n'));
      const [res] = await Promise.all([talk(connectTcp(web.outbound!), send(Buffer.concat(parts)), { waitMs: 5000, untilResponse: true }), expectNormalViaWeb()]);
      if (res.response !== undefined) {
        expect(res.response.status, res.data.toString()).toBe(413);
        expectNoInternals(res.response.body);
      } else {
        expect(res.closed).toBe(true);
      }
      expect(await eventually(() => seenFor('chunked-web').every((s) => s.settled))).toBe(true);
      expect(seenFor('chunked-web').filter((s) => s.complete)).toHaveLength(0);
    });
  });
});

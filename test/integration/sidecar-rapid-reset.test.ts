import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { connected, connectH2, h2Request, identityOf, RawH2Connection, type MtlsIdentity } from '../helpers/h2-client.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, outputContaining, runSidecar, WEB_ID, type RunningSidecar } from '../helpers/sidecar.js';

// Issue 13, item 3: HTTP/2 rapid reset (CVE-2023-44487). An identity that the policy denies everything opens streams
// and resets each one at once (HEADERS with END_STREAM, then RST_STREAM(CANCEL): two frames from node:http2), on
// four connections, reconnecting whenever a connection goes away, as in the issue. With the default limits the
// sidecar must send it GOAWAY, cut it off (its new connections refused), and bound the streams it serves, while a
// legitimate client (another identity) keeps getting every answer. The same from the app's side of the outbound
// listener, where the peer is the app's address.

const MALLORY_ID = `spiffe://${TD}/ns/default/sa/mallory`;
const ATTACK_MS = 3000;
const CONNECTIONS = 4;
/**
 * What the defaults let through: the streams of one event-loop turn per connection (maxConcurrentStreams, 256; the
 * rest of a turn's streams are refused and counted) until maxResetsPerPeer (2000) is used up.
 */
const SERVED_AT_MOST = 2000 + CONNECTIONS * 256;

/**
 * The issue's attack with a raw framer: CONNECTIONS connections writing HEADERS + RST_STREAM pairs as fast as the
 * socket takes them, each reconnecting whenever its connection goes away, for ATTACK_MS. Resolves with the number
 * of streams sent.
 */
async function rapidResetAttack(connect: () => Duplex, authority: string, path: string): Promise<number> {
  let streams = 0;
  const deadline = performance.now() + ATTACK_MS;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < deadline) {
        const connection = new RawH2Connection(connect());
        while (!connection.isClosed && performance.now() < deadline) {
          await connection.rapidReset(authority, path, 100);
          streams += 100;
        }
        connection.socket.destroy();
        await connection.closed;
      }
    }),
  );
  return streams;
}

/** A legitimate client asking again and again while `until` is pending; every answer it got. */
async function keepAsking(ask: () => Promise<{ status: number; error?: string }>, until: Promise<unknown>): Promise<Array<{ status: number; error?: string }>> {
  const answers: Array<{ status: number; error?: string }> = [];
  let done = false;
  void until.then(() => (done = true));
  while (!done) answers.push(await ask());
  return answers;
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('sidecar: HTTP/2 rapid reset (issue 13, item 3)', () => {
  const { dir, cleanup } = tempDir();
  let app: http.Server;
  let orders: RunningSidecar;
  let web: RunningSidecar;
  let mallory: MtlsIdentity;
  let legit: MtlsIdentity;

  beforeAll(async () => {
    app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const mesh = await makeMesh(dir);
    const [ordersSvid, webSvid] = await Promise.all([mesh.issue('orders', ORDERS_ID), mesh.issue('web', WEB_ID), mesh.issue('mallory', MALLORY_ID)]);
    writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    // Default limits on both listeners: they are what must hold.
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, policy: join(dir, 'policy.yaml') },
      admin: { listen: '127.0.0.1:0' },
    });
    web = await runSidecar(dir, 'web', {
      trustDomain: TD,
      identity: { files: { cert: webSvid.cert, key: webSvid.key, bundle: mesh.bundle } },
      outbound: { listen: '127.0.0.1:0', routes: [{ host: 'orders', address: orders.inbound, spiffeId: ORDERS_ID }] },
      admin: { listen: '127.0.0.1:0' },
    });
    mallory = identityOf(dir, 'mallory', mesh.bundle);
    legit = identityOf(dir, 'web', mesh.bundle);
  });

  afterAll(async () => {
    await Promise.all([orders?.stop(), web?.stop()]);
    app?.close();
    cleanup();
  });

  /** A new attacker connection once it is cut off: closed before any HTTP/2 session is set up on it. */
  async function refusedAgain(connect: () => Duplex): Promise<boolean> {
    const connection = new RawH2Connection(connect());
    await connection.rapidReset('orders', '/api/orders/1', 1);
    await connection.closed;
    return !connection.served;
  }

  it('inbound: a denied identity doing rapid reset is cut off; a legitimate client is served throughout', { timeout: 90_000 }, async () => {
    const session = connectH2(orders.inbound!, legit);
    await connected(session);
    const connectMallory = () => tls.connect({ ...splitAddress(orders.inbound!), ...mallory, servername: 'localhost', ALPNProtocols: ['h2'] });
    const attack = rapidResetAttack(connectMallory, 'orders', '/api/orders/1');
    // Slow answers are allowed on a loaded machine; failed ones are not.
    const answers = await keepAsking(() => h2Request(session, { ':authority': 'orders', ':path': '/api/orders/1' }, { waitMs: 30_000 }), attack);
    const streams = await attack;
    session.destroy();

    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status !== 200), JSON.stringify(answers.filter((a) => a.status !== 200).slice(0, 3))).toEqual([]);
    const output = await outputContaining(orders, 'HTTP/2 peer cut off', 60_000);
    const warnings = output.split('\n').filter((line) => line.includes('HTTP/2 peer cut off'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', direction: 'inbound', peer: MALLORY_ID, maxResetsPer10s: 2000, cooldownMs: 30_000 });
    expect(await refusedAgain(connectMallory)).toBe(true);
    // The legitimate client is still served after the cut-off: it is the attacker that is refused, not the listener.
    expect((await h2Request(connectH2(orders.inbound!, legit), { ':authority': 'orders', ':path': '/api/orders/1' }, { waitMs: 30_000 })).status).toBe(200);

    const metrics = (await httpRequest(orders.admin, '/metrics')).body;
    expect(sample(metrics, 'meshward_http2_peer_cutoffs_total{direction="inbound"}')).toBe(1);
    // Every stream the sidecar took on was judged (and denied): that is the work the attack got out of it.
    const served = sample(metrics, 'meshward_requests_total{direction="inbound",decision="deny",status="403"}') + sample(metrics, 'meshward_requests_total{direction="inbound",decision="deny",status="0"}');
    expect(streams).toBeGreaterThan(20 * SERVED_AT_MOST);
    expect(served).toBeLessThanOrEqual(SERVED_AT_MOST);
  });

  it('outbound: the app doing rapid reset on web’s h2c listener is cut off the same way', { timeout: 90_000 }, async () => {
    const connectApp = () => net.connect(splitAddress(web.outbound!));
    const streams = await rapidResetAttack(connectApp, 'orders', '/api/orders/1');
    const output = await outputContaining(web, 'HTTP/2 peer cut off', 60_000);
    expect(JSON.parse(output.split('\n').find((line) => line.includes('HTTP/2 peer cut off'))!)).toMatchObject({ direction: 'outbound', peer: '127.0.0.1' });
    expect(await refusedAgain(connectApp)).toBe(true);
    const metrics = (await httpRequest(web.admin, '/metrics')).body;
    expect(sample(metrics, 'meshward_http2_peer_cutoffs_total{direction="outbound"}')).toBe(1);
    const forwarded = metrics
      .split('\n')
      .filter((line) => line.startsWith('meshward_requests_total{direction="outbound"'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    expect(streams).toBeGreaterThan(20 * SERVED_AT_MOST);
    expect(forwarded).toBeLessThanOrEqual(SERVED_AT_MOST);
  });
});

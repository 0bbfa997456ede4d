import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/authz/index.js';
import { Http2SessionGuard, type ConnectionCutOff, type GuardLimits, type PeerCutOff } from '../../src/proxy/http2-session-guard.js';
import { eventually } from '../helpers/eventually.js';
import { connected, RawH2Connection } from '../helpers/h2-client.js';

// The HTTP/2 guard on a real node:http2 server in this process (every connection is one peer, "p"), driven by
// node:http2 clients and by the raw framer; the clock is a manual one, so that a cool-down can be run out at once.

const LIMITS: GuardLimits = {
  headersTimeout: 60_000,
  maxConcurrentStreams: 5,
  maxConcurrentStreamsPerPeer: 4,
  maxResetsPerConnection: 300,
  maxResetsPerPeer: 10,
  peerCooldown: 30_000,
};

interface Running {
  address: string;
  guard: Http2SessionGuard;
  clock: ManualClock;
  peerCutOffs: PeerCutOff[];
  connectionCutOffs: ConnectionCutOff[];
  /** Streams that reached the request handler open. */
  served: () => number;
}

const servers: http2.Http2Server[] = [];
const clients: Array<{ destroy(): void }> = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.destroy();
  for (const server of servers.splice(0)) server.close();
});

async function serve(limits: Partial<GuardLimits> = {}): Promise<Running> {
  const clock = new ManualClock(0);
  const peerCutOffs: PeerCutOff[] = [];
  const connectionCutOffs: ConnectionCutOff[] = [];
  const guard = new Http2SessionGuard({ ...LIMITS, ...limits }, { peerCutOff: (e) => peerCutOffs.push(e), connectionCutOff: (e) => connectionCutOffs.push(e) }, clock);
  let served = 0;
  const server = http2.createServer();
  server.on('session', (session) => guard.watch(session, 'p'));
  // Streams that are served hang until the client ends them.
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    if (!stream.closed) served += 1;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, guard, clock, peerCutOffs, connectionCutOffs, served: () => served };
}

function client(address: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  clients.push(session);
  return session;
}

function open(session: http2.ClientHttp2Session): http2.ClientHttp2Stream {
  const stream = session.request({ ':path': '/' }, { endStream: true });
  stream.on('error', () => undefined);
  return stream;
}

const closedWith = (stream: http2.ClientHttp2Stream) => new Promise<number | undefined>((resolve) => stream.once('close', () => resolve(stream.rstCode)));

describe('Http2SessionGuard', () => {
  it('refuses (REFUSED_STREAM) the streams over maxConcurrentStreamsPerPeer, over all the peer’s connections', async () => {
    const { address, served } = await serve();
    const [a, b] = [client(address), client(address)];
    await Promise.all([connected(a), connected(b)]);
    const first = [open(a), open(a), open(b)];
    await eventually(() => served() === 3);
    const more = [open(b), open(b), open(a)];
    // One more fits; two do not, whichever connection they come on.
    const refused = () => more.filter((s) => s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM).length;
    expect(await eventually(() => refused() === 2 && served() === 4)).toBe(true);
    expect(more.filter((s) => !s.closed)).toHaveLength(1);
    // Ending streams frees room again.
    for (const stream of first) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    await eventually(() => first.every((s) => s.closed));
    open(a);
    expect(await eventually(() => served() === 5)).toBe(true);
  });

  it('cuts off a peer past maxResetsPerPeer: GOAWAY (ENHANCE_YOUR_CALM) on each connection, new ones refused until the cool-down ends', async () => {
    const { address, guard, clock, peerCutOffs, connectionCutOffs, served } = await serve();
    const [a, b] = [client(address), client(address)];
    await Promise.all([connected(a), connected(b)]);
    const goaways = [a, b].map((session) => new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code))));
    // Ten cancels, each after the server has taken the stream on: the budget, spent.
    for (let i = 0; i < LIMITS.maxResetsPerPeer; i++) {
      const stream = open(i % 2 === 0 ? a : b);
      await eventually(() => served() === i + 1);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await closedWith(stream);
    }
    expect(guard.admits('p')).toBe(true);
    const last = open(a);
    await eventually(() => served() === LIMITS.maxResetsPerPeer + 1);
    last.close(http2.constants.NGHTTP2_CANCEL);
    expect(await Promise.all(goaways)).toEqual([http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]);
    expect(peerCutOffs).toEqual([{ peer: 'p', maxResets: LIMITS.maxResetsPerPeer, cooldownMs: LIMITS.peerCooldown }]);
    expect(connectionCutOffs).toEqual([
      { peer: 'p', reason: 'resets' },
      { peer: 'p', reason: 'resets' },
    ]);
    expect(guard.admits('p')).toBe(false);
    expect(guard.admits('someone else')).toBe(true);
    clock.advance(LIMITS.peerCooldown);
    expect(guard.admits('p')).toBe(true);
  });

  it('does not count streams that end without an error code', async () => {
    const { address, guard, served } = await serve({ maxConcurrentStreamsPerPeer: 100 });
    const session = client(address);
    await connected(session);
    for (let i = 0; i < 3 * LIMITS.maxResetsPerPeer; i++) {
      const stream = open(session);
      await eventually(() => served() === i + 1);
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
      await closedWith(stream);
    }
    expect(guard.admits('p')).toBe(true);
  });

  it('refuses the streams one connection opens in one turn beyond maxConcurrentStreams, and counts them', async () => {
    const { address, guard, served } = await serve({ maxConcurrentStreamsPerPeer: 1000 });
    // A client that waits for answers cannot send such a burst: 16 streams in one write.
    const raw = new RawH2Connection(net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) }));
    clients.push(raw.socket);
    await raw.openStreams('x', '/', 16);
    await eventually(() => served() >= LIMITS.maxConcurrentStreams);
    expect(served()).toBe(LIMITS.maxConcurrentStreams);
    // Eleven refused: one more than the budget, and the peer is cut off.
    expect(await eventually(() => !guard.admits('p'))).toBe(true);
  });

  it('counts the streams that never reached the handler (gaps in the stream ids) as resets', async () => {
    const { address, guard, served } = await serve();
    const raw = new RawH2Connection(net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) }));
    clients.push(raw.socket);
    await raw.openStreams('x', '/', 1);
    raw.skipStreamIds(LIMITS.maxResetsPerPeer);
    await raw.openStreams('x', '/', 1);
    expect(await eventually(() => served() === 2)).toBe(true);
    expect(guard.admits('p')).toBe(true);
    raw.skipStreamIds(1);
    await raw.openStreams('x', '/', 1);
    expect(await eventually(() => !guard.admits('p'))).toBe(true);
  });

  it('closes a connection whose first request does not come within headersTimeout', async () => {
    const { address, connectionCutOffs } = await serve({ headersTimeout: 100 });
    const idle = client(address);
    const goaway = new Promise<number>((resolve) => idle.once('goaway', (code: number) => resolve(code)));
    expect(await goaway).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(connectionCutOffs).toEqual([{ peer: 'p', reason: 'first_request_late' }]);
  });
});

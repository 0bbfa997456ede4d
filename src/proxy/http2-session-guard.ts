import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { systemClock, type Clock } from '../authz/index.js';
import { MemoryRateLimitStore } from '../filters/rate-limit/memory-store.js';
import type { Limits } from '../config/index.js';

// What one peer may do to a listener over HTTP/2, after CVE-2023-44487 ("rapid reset"): a stream opened and reset at
// once costs the client two frames and the sidecar a filter chain and an upstream request, and a reset stream no
// longer counts against SETTINGS_MAX_CONCURRENT_STREAMS, so that cap alone does not bound the work. As nghttp2,
// Envoy and Go do, resets are counted and held to a budget (a token bucket: so many in any 10 s):
// - per connection, by nghttp2 itself (Node's streamResetBurst / streamResetRate, limits.maxResetsPerConnection):
//   it counts every RST_STREAM it receives, including those for streams that never reached JavaScript, and answers
//   a connection over its budget with GOAWAY;
// - per peer (its SPIFFE ID inbound, its address outbound), here, over all its connections
//   (limits.maxResetsPerPeer): a peer over its budget has every connection closed with GOAWAY (ENHANCE_YOUR_CALM),
//   and its new connections (HTTP/1.1 as well) refused for limits.peerCooldown, so that reconnecting after each
//   GOAWAY gains nothing. One warning and one metric say so.
// A reset here is a stream that closed with an error code the sidecar did not send (the client's RST_STREAM, a gRPC
// cancel being one; nghttp2 resetting a stream that broke the protocol or a limit; the connection dropped under it),
// a stream that never reached JavaScript (nghttp2 refused it, or it was reset before it could be handed over: seen
// as a gap in the stream ids), or a stream refused for being over the peer's limits.maxConcurrentStreamsPerPeer.
// Streams closed because the sidecar closed their connection (a drain, or a cut-off) are not counted.
//
// Also here, because it is HTTP/2's form of the slow-loris bound: a new connection must send its first request's
// headers within limits.headersTimeout (Node's HTTP/1.1 server does so itself).

const RESET_WINDOW_SECONDS = 10;
const CUT_GRACE_MS = 1000;
/** Cool-downs held at once; expired ones are dropped first. Each one is a peer that proved its identity. */
const MAX_COOLDOWNS = 10_000;

export type GuardLimits = Pick<
  Limits,
  'headersTimeout' | 'maxConcurrentStreams' | 'maxConcurrentStreamsPerPeer' | 'maxResetsPerConnection' | 'maxResetsPerPeer' | 'peerCooldown'
>;

export interface PeerCutOff {
  peer: string;
  /** The budget it ran out of: resets in any 10 s. */
  maxResets: number;
  cooldownMs: number;
}

export interface ConnectionCutOff {
  peer: string;
  reason: 'resets' | 'cooldown' | 'first_request_late';
}

export interface GuardEvents {
  /** A peer ran out of its reset budget: it is refused for the cool-down. */
  peerCutOff(event: PeerCutOff): void;
  /** One connection was closed (or refused) by the guard. */
  connectionCutOff(event: ConnectionCutOff): void;
}

interface PeerState {
  sessions: Set<ServerHttp2Session>;
  openStreams: number;
}

/** What http2.createServer takes for the per-connection budget (nghttp2's stream reset rate limit). */
export function perConnectionResetLimit(limits: Pick<Limits, 'maxResetsPerConnection'>): { streamResetBurst: number; streamResetRate: number } {
  return { streamResetBurst: limits.maxResetsPerConnection, streamResetRate: Math.max(1, Math.round(limits.maxResetsPerConnection / RESET_WINDOW_SECONDS)) };
}

export class Http2SessionGuard {
  private readonly resets: MemoryRateLimitStore;
  private readonly budget;
  private readonly peers = new Map<string, PeerState>();
  private readonly cooldowns = new Map<string, number>();
  /** Sessions the guard closed itself: their streams' ends are not the client's doing. */
  private readonly cut = new WeakSet<ServerHttp2Session>();

  constructor(
    private readonly limits: GuardLimits,
    private readonly events: GuardEvents,
    private readonly clock: Clock = systemClock,
  ) {
    this.resets = new MemoryRateLimitStore(clock);
    this.budget = { name: 'peer', burst: limits.maxResetsPerPeer, requestsPerSecond: limits.maxResetsPerPeer / RESET_WINDOW_SECONDS };
  }

  /** Whether a new connection (either protocol) of `peer` may be served: not while the peer is cut off. */
  admits(peer: string): boolean {
    if (!this.coolingDown(peer)) return true;
    this.events.connectionCutOff({ peer, reason: 'cooldown' });
    return false;
  }

  /** Watches a new HTTP/2 connection of `peer`. */
  watch(session: ServerHttp2Session, peer: string): void {
    const state = this.peerState(peer);
    state.sessions.add(session);
    let streamsSeen = 0;
    let streamsThisTurn = 0;
    const firstRequest = setTimeout(() => this.close(session, peer, 'first_request_late'), this.limits.headersTimeout);
    firstRequest.unref();
    session.once('close', () => {
      clearTimeout(firstRequest);
      state.sessions.delete(session);
      this.forgetIfIdle(peer, state);
    });
    // Before the request handler, so that a refused stream reaches it closed (and the listener skips it).
    session.prependListener('stream', (stream: ServerHttp2Stream) => {
      clearTimeout(firstRequest);
      // Client stream ids are 1, 3, 5, ...: the ones skipped never reached JavaScript.
      const skipped = (stream.id! + 1) / 2 - 1 - streamsSeen;
      streamsSeen = (stream.id! + 1) / 2;
      if (skipped > 0) this.countResets(peer, skipped);
      if (streamsThisTurn === 0) setImmediate(() => (streamsThisTurn = 0));
      streamsThisTurn += 1;
      if (streamsThisTurn > this.limits.maxConcurrentStreams || state.openStreams >= this.limits.maxConcurrentStreamsPerPeer) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        this.countResets(peer, 1);
        return;
      }
      state.openStreams += 1;
      stream.once('close', () => {
        state.openStreams -= 1;
        this.forgetIfIdle(peer, state);
        const reset = stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
        // A session closed by the sidecar (a drain's GOAWAY, or a cut-off) ends its streams itself.
        if (reset && !session.closed && !this.cut.has(session)) this.countResets(peer, 1);
      });
    });
  }

  private countResets(peer: string, count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.resets.take([{ limit: this.budget, key: peer }]) === undefined) continue;
      this.cutOff(peer);
      return;
    }
  }

  private cutOff(peer: string): void {
    if (this.coolingDown(peer)) return;
    if (this.cooldowns.size >= MAX_COOLDOWNS) this.dropExpiredCooldowns();
    this.cooldowns.set(peer, this.clock.now() + this.limits.peerCooldown);
    this.events.peerCutOff({ peer, maxResets: this.limits.maxResetsPerPeer, cooldownMs: this.limits.peerCooldown });
    for (const session of this.peers.get(peer)?.sessions ?? []) this.close(session, peer, 'resets');
  }

  /**
   * GOAWAY (ENHANCE_YOUR_CALM), which stops new streams at once (nghttp2 ignores them); the connection is closed,
   * with whatever streams it has, CUT_GRACE_MS later: time for the GOAWAY to reach a client that is still reading.
   */
  private close(session: ServerHttp2Session, peer: string, reason: ConnectionCutOff['reason']): void {
    if (session.destroyed || this.cut.has(session)) return;
    this.cut.add(session);
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const timer = setTimeout(() => session.destroy(), CUT_GRACE_MS);
    timer.unref();
    session.once('close', () => clearTimeout(timer));
    this.events.connectionCutOff({ peer, reason });
  }

  private coolingDown(peer: string): boolean {
    const until = this.cooldowns.get(peer);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.cooldowns.delete(peer);
    return false;
  }

  private peerState(peer: string): PeerState {
    let state = this.peers.get(peer);
    if (state === undefined) {
      state = { sessions: new Set(), openStreams: 0 };
      this.peers.set(peer, state);
    }
    return state;
  }

  private forgetIfIdle(peer: string, state: PeerState): void {
    if (state.sessions.size === 0 && state.openStreams === 0 && this.peers.get(peer) === state) this.peers.delete(peer);
  }

  private dropExpiredCooldowns(): void {
    const now = this.clock.now();
    for (const [peer, until] of this.cooldowns) if (until <= now) this.cooldowns.delete(peer);
    // Still full: the oldest cool-down ends early rather than memory growing without bound.
    if (this.cooldowns.size >= MAX_COOLDOWNS) this.cooldowns.delete(this.cooldowns.keys().next().value!);
  }
}

import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';

// Open connections and the requests in flight on each, so that a drain can close idle connections at once, let busy
// ones finish their requests, and cut whatever is left when the drain time is up.

export class ConnectionTracker {
  private readonly inFlight = new Map<Socket, number>();
  private readonly sessions = new Set<Http2Session>();
  private idleWaiters: Array<() => void> = [];
  private total = 0;
  private readonly http2Sockets = new WeakSet<Socket>();
  draining = false;

  add(socket: Socket): void {
    this.inFlight.set(socket, 0);
    socket.once('close', () => {
      this.inFlight.delete(socket);
      this.notifyIfIdle();
    });
  }

  addSession(session: Http2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    if (this.draining) session.close();
  }

  /** HTTP/1.1 requests are counted per connection; an HTTP/2 stream's socket is its session's proxy, counted only in total. */
  begin(socket: Socket): void {
    this.total += 1;
    const count = this.inFlight.get(socket);
    if (count !== undefined) this.inFlight.set(socket, count + 1);
  }

  end(socket: Socket): void {
    this.total -= 1;
    const count = this.inFlight.get(socket);
    if (count !== undefined) {
      this.inFlight.set(socket, count - 1);
      // Draining: an HTTP/1.1 connection that just finished its last request goes now.
      if (this.draining && count === 1) socket.destroySoon();
    }
    this.notifyIfIdle();
  }

  get active(): number {
    return this.total;
  }

  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    // HTTP/2 clients get a GOAWAY and finish the streams they have; idle HTTP/1.1 connections close now.
    for (const session of this.sessions) session.close();
    for (const [socket, count] of this.inFlight) if (count === 0 && !this.isHttp2(socket)) socket.destroySoon();
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const session of this.sessions) session.destroy();
    for (const socket of this.inFlight.keys()) socket.destroy();
  }

  private notifyIfIdle(): void {
    if (!this.draining || this.active > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The socket carries HTTP/2 without ALPN (h2c, known by its preface): it is drained through its session. */
  markHttp2(socket: Socket): void {
    this.http2Sockets.add(socket);
  }

  private isHttp2(socket: Socket): boolean {
    return this.http2Sockets.has(socket) || (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2';
  }
}

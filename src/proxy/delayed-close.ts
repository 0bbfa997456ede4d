import type { Socket } from 'node:net';

// Closing a connection at once after refusing a request whose body is still arriving makes the kernel answer the
// rest of the body with a reset, which can reach the client before it has read the refusal: it sees EPIPE or
// ECONNRESET instead of the 413 (RFC 9112 section 9.6). As Envoy's delayed_close_timeout and nginx's lingering_close
// do, the socket is half-closed once the reply is written, what the client still sends is read and dropped, and the
// socket is closed when the client closes its side or after `graceMs`, whichever comes first.
export function delayClose(socket: Socket, graceMs: number): void {
  // Node's HTTP/1.1 server calls destroySoon() on a connection whose response said `Connection: close`.
  socket.destroySoon = function delayedClose(this: Socket): void {
    this.end();
    const timer = setTimeout(() => this.destroy(), graceMs);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

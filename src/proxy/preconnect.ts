import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

// One connection opened ahead for a pool to a destination sidecar. A pool made at start (or anew at an SVID
// rotation) has no connection and no TLS session: a burst of requests opens one connection each, all at once, every
// one a full mTLS handshake (certificates sent, verified and parsed at both ends) competing for the same CPU. With
// one connection up before the first request, the first request has a connection, and the connections the burst
// still opens resume the TLS session the first one received (16 resumed at once finished in about half the time
// of 16 full handshakes: bench/tls-handshakes.mjs). In the cold-start benchmark it made no difference beyond the noise (bench/README.md,
// "The first seconds after ready"): there the first requests wait for CPU, not for handshakes.
//
// The connection is opened with the pool's own connector, so the session lands in the cache the pool's later
// connections read. It is handed to the pool the first time the pool asks for a connection; one that closed
// meanwhile (the far end's idle timeout, a restart) is dropped and the pool connects as it would have. A far end
// that is not up yet (sidecars start together) is tried again a few times, backing off; then the pool is left to
// connect on demand as before.

const RETRY_DELAYS_MS = [100, 200, 400, 800, 1_600, 3_200];

export interface Preconnected {
  /** The connector to give the pool: hands over the connection opened ahead, else connects as `base` does. */
  connect: buildConnector.connector;
  /** Closes the connection opened ahead if the pool never took it, and stops trying to open it. */
  close(): void;
}

export function preconnect(base: buildConnector.connector, origin: URL, onFailure: (err: Error, attempt: number) => void): Preconnected {
  const params: buildConnector.Options = { hostname: origin.hostname, host: origin.host, protocol: origin.protocol, port: origin.port };
  let spare: Socket | undefined;
  /** The pool asked while the connection was being opened: it gets that one rather than a second. */
  let waiting: { options: buildConnector.Options; callback: buildConnector.Callback } | undefined;
  let opening = false;
  /** The pool has had its first connection (or the sidecar closed the pool): nothing more is opened ahead. */
  let done = false;
  let retry: NodeJS.Timeout | undefined;
  const dropSpare = () => (spare = undefined);

  const open = (attempt: number) => {
    retry = undefined;
    opening = true;
    base(params, (err, socket) => {
      opening = false;
      const pool = waiting;
      waiting = undefined;
      if (err) {
        onFailure(err, attempt);
        if (pool) base(pool.options, pool.callback);
        else if (!done && RETRY_DELAYS_MS[attempt] !== undefined) retry = setTimeout(open, RETRY_DELAYS_MS[attempt], attempt + 1).unref();
        return;
      }
      if (pool) pool.callback(null, socket!);
      else if (done) socket!.destroy();
      else {
        spare = socket!;
        spare.once('close', dropSpare);
      }
    });
  };
  open(0);

  const stop = () => {
    done = true;
    if (retry !== undefined) clearTimeout(retry);
    retry = undefined;
  };
  return {
    connect(options, callback) {
      if (!done) {
        stop();
        if (opening) {
          waiting = { options, callback };
          return;
        }
        const socket = spare;
        spare = undefined;
        if (socket !== undefined && !socket.destroyed && socket.writable && socket.readable) {
          socket.removeListener('close', dropSpare);
          // Asynchronously, as a connector answers: undici's client is still setting up the connect it asked for
          // (called back synchronously, the pool never sent the request).
          process.nextTick(callback, null, socket);
          return;
        }
      }
      base(options, callback);
    },
    close() {
      stop();
      spare?.destroy();
      spare = undefined;
    },
  };
}

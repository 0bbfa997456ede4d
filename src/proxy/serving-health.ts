import { readdirSync, readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';

// Whether the sidecar can take new traffic, for /readyz. It cannot when the next connection would be refused:
// - a listener holds maxConnections connections (Node drops the next one unanswered);
// - the process is (nearly) out of file descriptors: the next accept or upstream connection would fail with EMFILE.
//   libuv swallows a failed accept (it accepts and closes the connection itself), so this is seen only by counting
//   the descriptors in use against the limit (Linux: /proc/self; elsewhere only the connection counts apply).
// Either one passes by itself once connections close, and readiness comes back with it.

export interface ListenerLoad {
  /** "inbound" (or "inbound[1]" in a list), "outbound": the config entry whose limits.maxConnections applies. */
  name: string;
  open(): number;
  maxConnections: number;
}

export type DescriptorUse = { open: number; limit: number } | 'exhausted' | undefined;

/** Why new traffic cannot be served now, or undefined when it can. */
export function servingProblem(listeners: readonly ListenerLoad[], descriptors: DescriptorUse): string | undefined {
  for (const listener of listeners) {
    const open = listener.open();
    if (open >= listener.maxConnections) return `the ${listener.name} listener holds ${open} connections, its limits.maxConnections`;
  }
  if (descriptors === 'exhausted') return 'out of file descriptors (EMFILE)';
  if (descriptors !== undefined && descriptors.limit - descriptors.open < descriptorReserve(descriptors.limit)) {
    return `${descriptors.open} of ${descriptors.limit} file descriptors in use: new connections would fail`;
  }
  return undefined;
}

/** Descriptors kept free for what a request needs (the client's socket, the app's, a log write): 5%, at least 32. */
function descriptorReserve(limit: number): number {
  return Math.max(32, Math.ceil(limit / 20));
}

/** This process's open descriptors and its limit (Linux); undefined where /proc cannot tell. */
export function descriptorUse(): DescriptorUse {
  try {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    if (limit === undefined) return undefined;
    return { open: readdirSync('/proc/self/fd').length, limit: Number(limit) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? 'exhausted' : undefined;
  }
}

/** Counts a server's open connections (TCP, before any handshake: what maxConnections counts). */
export function connectionCounter(server: Server): () => number {
  let open = 0;
  server.on('connection', (socket: Socket) => {
    open += 1;
    socket.once('close', () => (open -= 1));
  });
  return () => open;
}

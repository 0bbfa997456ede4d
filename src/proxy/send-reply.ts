import { delayClose } from './delayed-close.js';
import type { LocalReply } from '../filters/local-reply.js';
import { writeResponseHead, type DownstreamResponse } from './upstream.js';

/** How long a refused HTTP/1.1 connection keeps reading (and dropping) what the client still sends: Envoy's default. */
const DELAYED_CLOSE_MS = 1000;

/** Writes a reply the sidecar made itself. Over HTTP/1.1 a refused request's connection is closed when its body was not read. */
export function sendReply(res: DownstreamResponse, reply: LocalReply, closeConnection = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(reply.body),
    ...reply.headers,
  };
  if (closeConnection && 'shouldKeepAlive' in res) {
    headers.connection = 'close';
    if (res.socket) delayClose(res.socket, DELAYED_CLOSE_MS);
  }
  writeResponseHead(res, reply.status, headers);
  res.end(reply.body);
}

import type { LocalReply } from './local-reply.js';
import type { DownstreamResponse } from './upstream.js';

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
  if (closeConnection && 'shouldKeepAlive' in res) headers.connection = 'close';
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}

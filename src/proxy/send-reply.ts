import { replyResponse } from '../filters/chain.js';
import type { FilterResponse } from '../filters/http-filter.js';
import type { LocalReply } from '../filters/local-reply.js';
import { delayClose } from './delayed-close.js';
import { writeResponseHead, type DownstreamResponse } from './upstream.js';

/** How long a refused HTTP/1.1 connection keeps reading (and dropping) what the client still sends: Envoy's default. */
const DELAYED_CLOSE_MS = 1000;

const EMPTY = Buffer.alloc(0);

/** Writes a reply the sidecar made itself. Over HTTP/1.1 a refused request's connection is closed when its body was not read. */
export function sendReply(res: DownstreamResponse, reply: LocalReply, closeConnection = false): void {
  sendResponse(res, replyResponse(reply), closeConnection);
}

/** Writes a whole response (a local reply after the chain's response side); content-length is the body's. */
export function sendResponse(res: DownstreamResponse, response: FilterResponse, closeConnection = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = response.body ?? EMPTY;
  const headers: Record<string, string | string[] | number> = { ...response.headers, 'content-length': body.length };
  if (closeConnection && 'shouldKeepAlive' in res) {
    headers.connection = 'close';
    if (res.socket) delayClose(res.socket, DELAYED_CLOSE_MS);
  }
  writeResponseHead(res, response.status, headers);
  res.end(body);
}

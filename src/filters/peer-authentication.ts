import { replies } from './local-reply.js';
import { strictObject } from '../config/index.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';

/**
 * Only a peer with a valid X509-SVID in the trust domain gets further. The TLS handshake already refused peers
 * without a trusted, unexpired certificate; this refuses certificates that chain fine but are no SVID of ours.
 */
const peerSvidCheck: HttpFilter = {
  name: 'peerAuthentication',
  onRequest(ctx) {
    const peer = ctx.peer;
    if (peer === undefined) return replies.forbidden(ctx.requestId, 'the client presented no certificate');
    if (!peer.ok) return replies.forbidden(ctx.requestId, `the client certificate is not an SVID of this trust domain: ${peer.reason}`);
    return undefined;
  },
};

/** Every inbound chain runs it right after the limits (a `filters:` list cannot name it, or remove it). */
export const peerAuthentication: FilterFactory<Record<string, never>> = {
  name: 'peerAuthentication',
  settings: strictObject({}),
  create: () => peerSvidCheck,
};

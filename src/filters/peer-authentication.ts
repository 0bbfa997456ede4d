import { replies } from './local-reply.js';
import type { HttpFilter } from './http-filter.js';

/**
 * Only a peer with a valid X509-SVID in the trust domain gets further. The TLS handshake already refused peers
 * without a trusted, unexpired certificate; this refuses certificates that chain fine but are no SVID of ours.
 */
export const peerAuthentication: HttpFilter = {
  name: 'peerAuthentication',
  onRequest(ctx) {
    const peer = ctx.peer;
    if (peer === undefined) return replies.forbidden(ctx.requestId, 'the client presented no certificate');
    if (!peer.ok) return replies.forbidden(ctx.requestId, `the client certificate is not an SVID of this trust domain: ${peer.reason}`);
    return undefined;
  },
};

import type { OutboundRouteConfig } from '../config/index.js';
import type { OutboundRoutes } from './outbound-listener.js';
import { routeFor } from './outbound-routes.js';
import type { Upstream } from './upstream.js';

// The outbound routes while the sidecar has no SVID yet (the CA is still being waited for): a request for a routed
// host (outbound, or through an ingress route) cannot be sent over mTLS, so it is answered 503, which says "try
// again"; a host with no route keeps its 502.

const NO_IDENTITY: Upstream = {
  forward: () => Promise.resolve({ ok: false, kind: 'unavailable', detail: 'the sidecar has no SVID yet' }),
  close: () => Promise.resolve(),
  destroy: () => Promise.resolve(),
};

export function routesWithoutIdentity(routes: readonly OutboundRouteConfig[]): OutboundRoutes {
  const table = new Map(routes.map((r) => [r.host, NO_IDENTITY]));
  return { upstreamFor: (host, port) => routeFor(table, host, port), upstreamOf: (routeHost) => table.get(routeHost) };
}

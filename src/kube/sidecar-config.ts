import { stringify } from 'yaml';
import type { InboundListener } from './app-port.js';
import type { OutboundRoute } from './outbound-routes.js';
import { FILES, PORTS } from './sidecar-layout.js';

export interface SidecarConfigInput {
  trustDomain: string;
  caAddress: string;
  spiffeId: string;
  /** One inbound listener per app port (the app on loopback); none: the sidecar has no inbound listener. */
  listeners: readonly InboundListener[];
  routes: OutboundRoute[];
}

/** How long an SVID the sidecar asks the CA for lives; it renews at half of that. */
const SVID_TTL = '1h';

/**
 * The sidecar's config file (the contract of `meshward sidecar --config`), as YAML text. Identity comes from the
 * CA with the pod's projected service-account token: `token: file:PATH` makes the sidecar read the token from the
 * file at each request, because the kubelet replaces it before it expires.
 * Inbound and admin listen on all addresses: the inbound listeners are the pod's front door, and the kubelet probes admin on the
 * pod IP. Outbound stays on loopback: only the app may send through it.
 */
export function sidecarConfigYaml(input: SidecarConfigInput): string {
  const inbound = input.listeners.map((l) => ({ listen: `0.0.0.0:${l.port}`, app: `${l.app.protocol}://127.0.0.1:${l.app.port}`, policy: FILES.policy }));
  const config = {
    trustDomain: input.trustDomain,
    identity: {
      ca: { address: input.caAddress, bundle: FILES.bundle, spiffeId: input.spiffeId, token: `file:${FILES.token}`, ttl: SVID_TTL, stateDir: FILES.state },
    },
    // One app port: one inbound mapping, as the config is usually written; several: a list of them.
    ...(inbound.length === 0 ? {} : { inbound: inbound.length === 1 ? inbound[0] : inbound }),
    outbound: { listen: `127.0.0.1:${PORTS.outbound.port}`, routes: input.routes },
    admin: { listen: `0.0.0.0:${PORTS.admin.port}` },
  };
  return stringify(config, { lineWidth: 0 });
}

import { stringify } from 'yaml';
import type { OutboundRoute } from './outbound-routes.js';
import { FILES, PORTS } from './sidecar-layout.js';

export interface SidecarConfigInput {
  trustDomain: string;
  caAddress: string;
  spiffeId: string;
  /** The app's port on loopback; without one the sidecar has no inbound listener. */
  appPort: number | undefined;
  routes: OutboundRoute[];
}

/** How long an SVID the sidecar asks the CA for lives; it renews at half of that. */
const SVID_TTL = '1h';

/**
 * The sidecar's config file (the contract of `meshward sidecar --config`), as YAML text. Identity comes from the
 * CA with the pod's projected service-account token: `token: file:PATH` makes the sidecar read the token from the
 * file at each request, because the kubelet replaces it before it expires.
 * Inbound and admin listen on all addresses: inbound is the pod's front door, and the kubelet probes admin on the
 * pod IP. Outbound stays on loopback: only the app may send through it.
 */
export function sidecarConfigYaml(input: SidecarConfigInput): string {
  const config = {
    trustDomain: input.trustDomain,
    identity: {
      ca: { address: input.caAddress, bundle: FILES.bundle, spiffeId: input.spiffeId, token: `file:${FILES.token}`, ttl: SVID_TTL, stateDir: FILES.state },
    },
    ...(input.appPort === undefined
      ? {}
      : { inbound: { listen: `0.0.0.0:${PORTS.inbound.port}`, app: `http://127.0.0.1:${input.appPort}`, policy: FILES.policy } }),
    outbound: { listen: `127.0.0.1:${PORTS.outbound.port}`, routes: input.routes },
    admin: { listen: `0.0.0.0:${PORTS.admin.port}` },
  };
  return stringify(config, { lineWidth: 0 });
}

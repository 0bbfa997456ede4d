// The names, ports and paths the injected sidecar uses: one place, shared by the transform, the docs' examples
// and the tests. Changing one of these is a change to what users' Services and NetworkPolicies refer to.

import { CAPTURE_DEFAULTS } from '../capture/index.js';

export const SIDECAR_CONTAINER = 'meshward-sidecar';
/** Runs `meshward capture` before the sidecar starts: the pod's only container that runs as root. */
export const INIT_CONTAINER = 'meshward-init';

export const PORTS = {
  /**
   * The sidecar's mTLS listener: capture redirects the app's port to it (or a Service's `targetPort: meshward-in`).
   * Where the app has several ports, each further one has a listener on the next port: 15007 `meshward-in-2`, ...
   */
  inbound: { name: 'meshward-in', port: 15006 },
  /** The app's plain-HTTP egress listener, loopback only. */
  outbound: { port: 15001 },
  /** /healthz and /readyz for the kubelet's probes, so it listens on the pod IP. */
  admin: { name: 'meshward-admin', port: 15000 },
} as const;

export const VOLUMES = {
  /** Projected: the sidecar's config (from a pod annotation), the trust bundle and the policy. */
  config: { name: 'meshward-config', mountPath: '/etc/meshward' },
  /** Projected service-account token for the CA, audience meshward-ca. */
  token: { name: 'meshward-token', mountPath: '/var/run/secrets/meshward' },
  /** emptyDir for runtime files, since the root filesystem is read-only. */
  run: { name: 'meshward-run', mountPath: '/var/run/meshward' },
} as const;

export const FILES = {
  config: `${VOLUMES.config.mountPath}/sidecar.yaml`,
  bundle: `${VOLUMES.config.mountPath}/bundle.pem`,
  policy: `${VOLUMES.config.mountPath}/policy.yaml`,
  token: `${VOLUMES.token.mountPath}/token`,
  /** The sidecar's kept SVID (identity.ca.stateDir): the emptyDir outlives a container restart, not the pod. */
  state: `${VOLUMES.run.mountPath}/state`,
} as const;

export const ANNOTATIONS = {
  /** "false" on the workload or its pod template: leave it alone. */
  inject: 'meshward.io/inject',
  /** Optional: the containerPorts (numbers or names, comma-separated) the sidecar serves; default every declared one. */
  appPort: 'meshward.io/app-port',
  /** Optional: the ConfigMap (key policy.yaml) holding the policy; default meshward-policy. */
  policyConfigMap: 'meshward.io/policy-configmap',
  /** Optional: outbound routes as a JSON/YAML list of {host, address, spiffeId}. */
  outboundRoutes: 'meshward.io/outbound-routes',
  /** Written by injection: the sidecar's config, mounted as a file through the downward API. */
  sidecarConfig: 'meshward.io/sidecar-config',
  /** Written by injection: "<sidecar port> -> <app port>", comma-separated: where the sidecar forwards what it receives. */
  inbound: 'meshward.io/inbound',
  /** "false": no meshward-init container, for clusters whose CNI plugin redirects the traffic. */
  capture: 'meshward.io/capture',
  /** `meshward capture --inbound-ports`: "*" (the default) or the app ports to capture; injection picks each one's listener. */
  captureInboundPorts: 'meshward.io/capture-inbound-ports',
  /** `--exclude-inbound-ports`: ports reached directly (probes, metrics); the admin port always is. */
  captureExcludeInboundPorts: 'meshward.io/capture-exclude-inbound-ports',
  /** `--outbound-ports`: the ports whose outbound TCP goes through the sidecar (default "80"). */
  captureOutboundPorts: 'meshward.io/capture-outbound-ports',
  /** `--exclude-outbound-cidrs`: destinations reached directly. */
  captureExcludeOutboundCidrs: 'meshward.io/capture-exclude-outbound-cidrs',
} as const;

export const TRUST_BUNDLE_CONFIGMAP = 'meshward-trust-bundle';
export const DEFAULT_POLICY_CONFIGMAP = 'meshward-policy';
export const CA_TOKEN_AUDIENCE = 'meshward-ca';
/** The shortest lifetime the API server accepts for a projected token; the kubelet refreshes it at 80%. */
export const CA_TOKEN_EXPIRATION_SECONDS = 600;
/**
 * The sidecar's UID and GID: capture leaves this UID's connections alone, so that the sidecar's own traffic does
 * not loop back into it (and no app container may run as it).
 */
export const PROXY_UID = CAPTURE_DEFAULTS.proxyUid;

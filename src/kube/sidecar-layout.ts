// The names, ports and paths the injected sidecar uses: one place, shared by the transform, the docs' examples
// and the tests. Changing one of these is a change to what users' Services and NetworkPolicies refer to.

export const SIDECAR_CONTAINER = 'meshward-sidecar';

export const PORTS = {
  /** The sidecar's mTLS listener; a Service's `targetPort: meshward-in` routes through it. */
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
  /** Optional: which containerPort (number or name) the sidecar forwards to; default the first declared one. */
  appPort: 'meshward.io/app-port',
  /** Optional: the ConfigMap (key policy.yaml) holding the policy; default meshward-policy. */
  policyConfigMap: 'meshward.io/policy-configmap',
  /** Optional: outbound routes as a JSON/YAML list of {host, address, spiffeId}. */
  outboundRoutes: 'meshward.io/outbound-routes',
  /** Written by injection: the sidecar's config, mounted as a file through the downward API. */
  sidecarConfig: 'meshward.io/sidecar-config',
  /** Written by injection: "<sidecar port> -> <app port>", the mapping a Service's targetPort must follow. */
  inbound: 'meshward.io/inbound',
} as const;

export const TRUST_BUNDLE_CONFIGMAP = 'meshward-trust-bundle';
export const DEFAULT_POLICY_CONFIGMAP = 'meshward-policy';
export const CA_TOKEN_AUDIENCE = 'meshward-ca';
/** The shortest lifetime the API server accepts for a projected token; the kubelet refreshes it at 80%. */
export const CA_TOKEN_EXPIRATION_SECONDS = 600;
/** The distroless/nonroot convention, and the USER of meshward's image. */
export const SIDECAR_UID = 65532;

import { captureFlags, type CaptureOptions } from '../capture/index.js';
import type { InboundListener } from './app-port.js';
import type { JsonObject } from './manifest.js';
import {
  ANNOTATIONS,
  CA_TOKEN_AUDIENCE,
  CA_TOKEN_EXPIRATION_SECONDS,
  FILES,
  INIT_CONTAINER,
  PORTS,
  PROXY_UID,
  SIDECAR_CONTAINER,
  TRUST_BUNDLE_CONFIGMAP,
  VOLUMES,
} from './sidecar-layout.js';

const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
  httpGet: { path, port: PORTS.admin.name },
  periodSeconds,
  failureThreshold,
  timeoutSeconds: 1,
});

/**
 * The injected sidecar's V8 flags. Under load its memory grows with V8's young generation, sized by what is in
 * flight at each scavenge; with 4 MB semi-spaces, at 1,000 requests/s (bench/hop.mjs), each sidecar ended the load
 * at 119-161 MB instead of 164-190 (the rest is the old generation until its next mark-sweep), with no more CPU per
 * request. A start-up flag only (set at run time it does nothing), so it goes in NODE_OPTIONS, which lets it through.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4';

/**
 * The sidecar as a native sidecar: an init container with `restartPolicy: Always` (Kubernetes 1.29+). It starts
 * before the app and, through its startup probe on /readyz, holds the app back until an SVID is loaded, so the
 * app's first call already has an identity; and it does not keep a Job from completing, as a plain container would.
 * The security context meets the "restricted" Pod Security Standard. It runs as the proxy UID, whose own
 * connections capture lets pass, so that what it sends does not come back to it.
 */
export function sidecarContainer(image: string, listeners: readonly InboundListener[]): JsonObject {
  return {
    name: SIDECAR_CONTAINER,
    image,
    imagePullPolicy: 'IfNotPresent',
    restartPolicy: 'Always',
    args: ['sidecar', '--config', FILES.config],
    env: [
      { name: 'TMPDIR', value: VOLUMES.run.mountPath },
      { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
    ],
    ports: [
      ...listeners.map((l) => ({ name: l.name, containerPort: l.port, protocol: 'TCP' })),
      { name: PORTS.admin.name, containerPort: PORTS.admin.port, protocol: 'TCP' },
    ],
    resources: {
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    startupProbe: probe('/readyz', 1, 120),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    volumeMounts: [
      { name: VOLUMES.config.name, mountPath: VOLUMES.config.mountPath, readOnly: true },
      { name: VOLUMES.token.name, mountPath: VOLUMES.token.mountPath, readOnly: true },
      { name: VOLUMES.run.name, mountPath: VOLUMES.run.mountPath },
    ],
  };
}

/**
 * `meshward capture` as the first init container: it installs the pod's redirect rules and exits before the
 * sidecar or the app starts, so that no packet of theirs goes uncaptured. The only container of the pod that runs
 * as root, with NET_ADMIN and NET_RAW and nothing else; its rules outlive it in the pod's network namespace.
 */
export function initContainer(image: string, capture: CaptureOptions): JsonObject {
  return {
    name: INIT_CONTAINER,
    image,
    imagePullPolicy: 'IfNotPresent',
    args: ['capture', ...captureFlags(capture)],
    // iptables-legacy takes a lock file, by default in /run, which is read-only here.
    env: [{ name: 'XTABLES_LOCKFILE', value: `${VOLUMES.run.mountPath}/xtables.lock` }],
    resources: {
      requests: { cpu: '10m', memory: '32Mi' },
      limits: { cpu: '1', memory: '128Mi' },
    },
    securityContext: {
      runAsNonRoot: false,
      runAsUser: 0,
      runAsGroup: 0,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: VOLUMES.run.name, mountPath: VOLUMES.run.mountPath }],
  };
}

/**
 * The sidecar's volumes. Only the sidecar mounts them, so their files are world-readable (0444): the sidecar's
 * UID need not match the pod's fsGroup, which the app's owner chose. The policy is projected only for a sidecar with an
 * inbound listener: a pod that only makes calls should not wait for a ConfigMap it does not use.
 */
export function sidecarVolumes(policyConfigMap: string | undefined): JsonObject[] {
  return [
    {
      name: VOLUMES.config.name,
      projected: {
        defaultMode: 0o444,
        sources: [
          { downwardAPI: { items: [{ path: 'sidecar.yaml', fieldRef: { fieldPath: `metadata.annotations['${ANNOTATIONS.sidecarConfig}']` } }] } },
          { configMap: { name: TRUST_BUNDLE_CONFIGMAP, items: [{ key: 'bundle.pem', path: 'bundle.pem' }] } },
          ...(policyConfigMap === undefined ? [] : [{ configMap: { name: policyConfigMap, items: [{ key: 'policy.yaml', path: 'policy.yaml' }] } }]),
        ],
      },
    },
    {
      name: VOLUMES.token.name,
      projected: {
        defaultMode: 0o444,
        sources: [{ serviceAccountToken: { audience: CA_TOKEN_AUDIENCE, expirationSeconds: CA_TOKEN_EXPIRATION_SECONDS, path: 'token' } }],
      },
    },
    { name: VOLUMES.run.name, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
}

import { capturesInboundPort, parseCaptureSettings, type CaptureOptions, type CaptureSettings } from '../capture/index.js';
import type { InboundListener } from './app-port.js';
import { isObject, ManifestError, type JsonObject, type ManifestPath } from './manifest.js';
import { containersOf } from './pod-templates.js';
import { ANNOTATIONS, PORTS, PROXY_UID } from './sidecar-layout.js';

// What the meshward-init container captures, from the pod template's annotations, and what capture asks of the
// rest of the pod. Pure; refusals name the path.

const SETTING_ANNOTATIONS = {
  inboundPorts: ANNOTATIONS.captureInboundPorts,
  excludeInboundPorts: ANNOTATIONS.captureExcludeInboundPorts,
  outboundPorts: ANNOTATIONS.captureOutboundPorts,
  excludeOutboundCidrs: ANNOTATIONS.captureExcludeOutboundCidrs,
} as const satisfies Partial<Record<keyof CaptureSettings, string>>;

/**
 * The pod's capture as its annotations ask: every inbound port but the excluded ones (and the sidecar's admin port,
 * which the kubelet probes) to the inbound listener, outbound port 80 to the outbound listener, unless they say
 * otherwise; undefined when `meshward.io/capture: "false"` leaves it to a CNI plugin. Which listener each app port
 * goes to is injection's to say (withInboundListeners).
 */
export function captureOf(annotations: Record<string, unknown>, annotationsPath: ManifestPath): CaptureOptions | undefined {
  const enabled = annotations[ANNOTATIONS.capture];
  if (enabled !== undefined && enabled !== 'true' && enabled !== 'false') {
    throw new ManifestError([...annotationsPath, ANNOTATIONS.capture], 'must be "true" or "false"');
  }
  if (enabled === 'false') return undefined;
  const settings: CaptureSettings = { proxyUid: String(PROXY_UID), outboundListenerPort: String(PORTS.outbound.port) };
  for (const [setting, annotation] of Object.entries(SETTING_ANNOTATIONS) as [keyof typeof SETTING_ANNOTATIONS, string][]) {
    const value = annotations[annotation];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new ManifestError([...annotationsPath, annotation], 'must be a string');
    settings[setting] = value;
  }
  const parsed = parseCaptureSettings(settings);
  if (!parsed.ok) throw new ManifestError([...annotationsPath, SETTING_ANNOTATIONS[parsed.setting as keyof typeof SETTING_ANNOTATIONS]], parsed.error);
  const options = parsed.value;
  if (options.inbound.mappings.some((m) => m.port === PORTS.admin.port)) {
    throw new ManifestError([...annotationsPath, ANNOTATIONS.captureInboundPorts], `port ${PORTS.admin.port} is the sidecar's admin port, which the kubelet probes; it cannot be captured`);
  }
  if (!options.excludeInboundPorts.includes(PORTS.admin.port)) options.excludeInboundPorts.push(PORTS.admin.port);
  return options;
}

/**
 * Capture with each app port sent to its own inbound listener, and every other captured port to the first (as a
 * pod with one app port has every port sent to its one listener). A listener written in the annotation must be the
 * one injection gives that port.
 */
export function withInboundListeners(options: CaptureOptions, listeners: readonly InboundListener[], annotationsPath: ManifestPath): CaptureOptions {
  const first = PORTS.inbound.port;
  const where = [...annotationsPath, ANNOTATIONS.captureInboundPorts];
  const listenerOf = (port: number) => listeners.find((l) => l.app.port === port)?.port ?? first;
  const { mappings, others } = options.inbound;
  for (const m of mappings) {
    // A listener not written reads as 15006: that one stands for "the one injection gives it".
    if (m.listener !== first && m.listener !== listenerOf(m.port)) throw new ManifestError(where, `the injected sidecar's inbound listener for port ${m.port} is ${listenerOf(m.port)}; ${m.listener} is not it`);
  }
  if (others !== undefined && others !== first) throw new ManifestError(where, `every other port goes to the injected sidecar's first inbound listener, ${first}; ${others} is not it`);
  const mapped = mappings.map((m) => ({ port: m.port, listener: listenerOf(m.port) }));
  if (others !== undefined && listeners.length > 1) {
    const unlisted = listeners.filter((l) => !mapped.some((m) => m.port === l.app.port) && !options.excludeInboundPorts.includes(l.app.port));
    mapped.push(...unlisted.map((l) => ({ port: l.app.port, listener: l.port })));
  }
  return { ...options, inbound: { ...options.inbound, mappings: mapped } };
}

const PROBES = ['startupProbe', 'readinessProbe', 'livenessProbe'] as const;
const HANDLERS = ['httpGet', 'tcpSocket', 'grpc'] as const;

/**
 * Refuses what capture would quietly break: a kubelet probe of a captured port would meet the sidecar's mTLS
 * listener and fail, so the pod would never become ready.
 */
export function refuseCapturedProbes(podSpec: JsonObject, specPath: ManifestPath, options: CaptureOptions): void {
  for (const { container, path } of containersOf(podSpec, specPath)) {
    for (const probe of PROBES) {
      for (const handler of HANDLERS) {
        const target = isObject(container[probe]) ? (container[probe] as JsonObject)[handler] : undefined;
        if (!isObject(target)) continue;
        const port = typeof target.port === 'number' ? target.port : namedPort(container, target.port);
        if (port === undefined || !capturesInboundPort(options, port)) continue;
        throw new ManifestError(
          [...path, probe, handler, 'port'],
          `capture would send the kubelet's probe of port ${port} to the sidecar's mTLS listener, where it fails; serve the probe on a port of its own listed in ${ANNOTATIONS.captureExcludeInboundPorts}, or set ${ANNOTATIONS.capture}: "false"`,
        );
      }
    }
  }
}

function namedPort(container: JsonObject, name: unknown): number | undefined {
  if (typeof name !== 'string' || !Array.isArray(container.ports)) return undefined;
  const port = container.ports.find((p) => isObject(p) && p.name === name);
  return isObject(port) && typeof port.containerPort === 'number' ? port.containerPort : undefined;
}

/**
 * Refuses an app container that runs as the proxy UID: capture lets that UID's connections pass, so its egress
 * would go around the sidecar.
 */
export function refuseProxyUid(podSpec: JsonObject, specPath: ManifestPath): void {
  const podUid = isObject(podSpec.securityContext) ? podSpec.securityContext.runAsUser : undefined;
  for (const { container, path } of containersOf(podSpec, specPath)) {
    const own = isObject(container.securityContext) ? container.securityContext.runAsUser : undefined;
    if ((own ?? podUid) !== PROXY_UID) continue;
    const where = own !== undefined ? [...path, 'securityContext', 'runAsUser'] : [...specPath, 'securityContext', 'runAsUser'];
    throw new ManifestError(where, `UID ${PROXY_UID} is the meshward sidecar's, whose connections capture lets pass; run the app as another UID`);
  }
}

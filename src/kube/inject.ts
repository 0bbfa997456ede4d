import { parseSpiffeId } from '../spiffe/id.js';
import { capturesInboundPort } from '../capture/index.js';
import { selectAppPorts } from './app-port.js';
import { captureOf, refuseCapturedProbes, refuseProxyUid, withInboundListeners } from './capture-settings.js';
import { annotationsOf, arrayAt, isObject, ManifestError, objectAt, type JsonObject } from './manifest.js';
import { parseOutboundRoutes } from './outbound-routes.js';
import { containersOf, podTemplatesOf, type PodTemplateRef } from './pod-templates.js';
import { sidecarConfigYaml } from './sidecar-config.js';
import { initContainer, sidecarContainer, sidecarVolumes } from './sidecar-container.js';
import { ANNOTATIONS, DEFAULT_POLICY_CONFIGMAP, INIT_CONTAINER, SIDECAR_CONTAINER, VOLUMES } from './sidecar-layout.js';

export interface InjectOptions {
  trustDomain: string;
  /** host:port of the meshward CA as pods reach it. */
  caAddress: string;
  image: string;
  /**
   * The namespace the pod lands in, when known for certain (an admission request says it). Otherwise each
   * workload's `metadata.namespace`, else `defaultNamespace`. It is part of the SPIFFE ID the sidecar asks for.
   */
  namespace?: string;
  /** For workloads that do not name their namespace; default "default", as kubectl's. */
  defaultNamespace?: string;
}

export interface InjectResult {
  /** False when nothing was added: not a workload, opted out, or already injected. */
  changed: boolean;
  /** The injected copy (the input is never modified); the input itself when unchanged. */
  manifest: JsonObject;
}

// DNS-1123 subdomain: what Kubernetes accepts as a ConfigMap name.
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Adds the meshward sidecar to every pod template in a manifest (Pod, Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, Job, CronJob, and each of those in a List), and before it the meshward-init container that
 * captures the pod's traffic (unless `meshward.io/capture: "false"`). Pure: no I/O, the input is not modified.
 * Idempotent: a pod template that already has the sidecar is left as it is. Throws ManifestError naming the path
 * of anything that stops injection (a port, container or volume name the sidecar needs is taken, hostNetwork, a
 * bad annotation, an app container running as the proxy UID, a probe capture would break).
 */
export function injectSidecar(manifest: JsonObject, options: InjectOptions): InjectResult {
  const copy = structuredClone(manifest);
  let changed = false;
  for (const ref of podTemplatesOf(copy)) {
    if (injectPodTemplate(ref, options)) changed = true;
  }
  return changed ? { changed, manifest: copy } : { changed, manifest };
}

const optedOut = (metadata: unknown) => String(annotationsOf(metadata)[ANNOTATIONS.inject]) === 'false';

function hasSidecar(podSpec: JsonObject): boolean {
  return containersOf(podSpec, []).some(({ container }) => container.name === SIDECAR_CONTAINER);
}

function injectPodTemplate({ path, template, workload }: PodTemplateRef, options: InjectOptions): boolean {
  const spec = template.spec as JsonObject;
  if (optedOut(workload.metadata) || optedOut(template.metadata) || hasSidecar(spec)) return false;
  const specPath = [...path, 'spec'];
  if (spec.hostNetwork === true) {
    throw new ManifestError([...specPath, 'hostNetwork'], `a hostNetwork pod shares the node's ports, so the sidecar's cannot be reserved; set the annotation ${ANNOTATIONS.inject}: "false" to leave it out of the mesh`);
  }
  const annotations = annotationsOf(template.metadata);
  const annotationPath = [...path, 'metadata', 'annotations'];
  const asked = captureOf(annotations, annotationPath);
  const listeners = selectAppPorts(path, annotations, spec, (port) => asked === undefined || capturesInboundPort(asked, port));
  const capture = asked && withInboundListeners(asked, listeners, annotationPath);
  const routes = parseOutboundRoutes(annotations[ANNOTATIONS.outboundRoutes], [...annotationPath, ANNOTATIONS.outboundRoutes]);
  const policyConfigMap = listeners.length === 0 ? undefined : policyConfigMapName(annotations[ANNOTATIONS.policyConfigMap], [...annotationPath, ANNOTATIONS.policyConfigMap]);
  refuseProxyUid(spec, specPath);
  if (capture) refuseCapturedProbes(spec, specPath, capture);
  const taken = containersOf(spec, specPath).find(({ container }) => container.name === INIT_CONTAINER);
  if (taken) throw new ManifestError([...taken.path, 'name'], `the container name "${INIT_CONTAINER}" is reserved for meshward`);

  const volumes = arrayAt(spec, 'volumes', specPath);
  const ours = new Set<string>(Object.values(VOLUMES).map((v) => v.name));
  volumes.forEach((v, i) => {
    if (isObject(v) && typeof v.name === 'string' && ours.has(v.name)) {
      throw new ManifestError([...specPath, 'volumes', i, 'name'], `the volume name "${v.name}" is reserved for the meshward sidecar`);
    }
  });

  const metadata = objectAt(template, 'metadata', path);
  const writable = objectAt(metadata, 'annotations', [...path, 'metadata']);
  writable[ANNOTATIONS.sidecarConfig] = sidecarConfigYaml({
    trustDomain: options.trustDomain,
    caAddress: options.caAddress,
    spiffeId: spiffeIdOf(workload, spec, options),
    listeners,
    routes,
  });
  if (listeners.length > 0) writable[ANNOTATIONS.inbound] = listeners.map((l) => `${l.port} -> ${l.app.port}`).join(', ');

  // In order: capture, then the sidecar (started before the app, and before any init container of the app's).
  arrayAt(spec, 'initContainers', specPath).unshift(...(capture ? [initContainer(options.image, capture)] : []), sidecarContainer(options.image, listeners));
  volumes.push(...sidecarVolumes(policyConfigMap));
  return true;
}

function policyConfigMapName(value: unknown, where: ReadonlyArray<string | number>): string {
  if (value === undefined) return DEFAULT_POLICY_CONFIGMAP;
  if (typeof value !== 'string' || !OBJECT_NAME.test(value)) throw new ManifestError(where, `${JSON.stringify(value)} is not a ConfigMap name`);
  return value;
}

/** spiffe://TD/ns/<namespace>/sa/<service account>: what the CA will grant for the pod's projected token. */
function spiffeIdOf(workload: JsonObject, spec: JsonObject, options: InjectOptions): string {
  const meta = isObject(workload.metadata) ? workload.metadata : {};
  const namespace = options.namespace ?? (typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : (options.defaultNamespace ?? 'default'));
  const account = [spec.serviceAccountName, spec.serviceAccount].find((a): a is string => typeof a === 'string' && a !== '') ?? 'default';
  const id = parseSpiffeId(`spiffe://${options.trustDomain}/ns/${namespace}/sa/${account}`);
  if (!id.ok) throw new ManifestError([], id.error);
  return id.value.uri;
}

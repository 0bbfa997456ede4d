import { isObject, ManifestError, type JsonObject, type ManifestPath } from './manifest.js';

// Where each workload kind keeps the pod it runs. The API group is part of the match: a custom resource that
// happens to be called "Job" in another group is not a batch Job and passes through untouched.
const TEMPLATE_PATH: Record<string, { group: string; path: string[] }> = {
  Pod: { group: '', path: [] },
  Deployment: { group: 'apps', path: ['spec', 'template'] },
  StatefulSet: { group: 'apps', path: ['spec', 'template'] },
  DaemonSet: { group: 'apps', path: ['spec', 'template'] },
  ReplicaSet: { group: 'apps', path: ['spec', 'template'] },
  Job: { group: 'batch', path: ['spec', 'template'] },
  CronJob: { group: 'batch', path: ['spec', 'jobTemplate', 'spec', 'template'] },
};

export interface PodTemplateRef {
  /** From the document root to the pod template (`metadata` + `spec`); for a Pod, the Pod itself. */
  path: ManifestPath;
  template: JsonObject;
  /** The workload that owns the template (the Pod itself for a Pod): its metadata can opt out, and names the namespace. */
  workload: JsonObject;
}

function apiGroup(apiVersion: unknown): string | undefined {
  if (typeof apiVersion !== 'string') return undefined;
  const slash = apiVersion.indexOf('/');
  return slash === -1 ? '' : apiVersion.slice(0, slash);
}

/**
 * Every pod template in a document, in order: one for a workload, one per workload item of a `List`, none for
 * anything else. Throws ManifestError when a known workload lacks its template, as the API server would refuse it.
 */
export function podTemplatesOf(manifest: JsonObject, path: ManifestPath = []): PodTemplateRef[] {
  if (manifest.kind === 'List' && apiGroup(manifest.apiVersion) === '') {
    if (!Array.isArray(manifest.items)) throw new ManifestError([...path, 'items'], 'a List must have a list of items');
    return manifest.items.flatMap((item, i) => (isObject(item) ? podTemplatesOf(item, [...path, 'items', i]) : []));
  }
  const where = typeof manifest.kind === 'string' ? TEMPLATE_PATH[manifest.kind] : undefined;
  if (!where || apiGroup(manifest.apiVersion) !== where.group) return [];
  let node: JsonObject = manifest;
  const at: (string | number)[] = [...path];
  for (const key of where.path) {
    const next = node[key];
    at.push(key);
    if (!isObject(next)) throw new ManifestError(at, `is missing: a ${manifest.kind} keeps its pod template at ${where.path.join('.')}`);
    node = next;
  }
  if (!isObject(node.spec)) throw new ManifestError([...at, 'spec'], 'the pod spec is missing');
  return [{ path: at, template: node, workload: manifest }];
}

export interface ContainerRef {
  container: JsonObject;
  path: ManifestPath;
  /** A regular container (the app's), not an init container. */
  app: boolean;
}

/** The pod's init containers, then its containers, each with its path. */
export function containersOf(podSpec: JsonObject, specPath: ManifestPath): ContainerRef[] {
  return (['initContainers', 'containers'] as const).flatMap((list) => {
    const containers = podSpec[list];
    if (!Array.isArray(containers)) return [];
    return containers.flatMap((c, i) => (isObject(c) ? [{ container: c, path: [...specPath, list, i], app: list === 'containers' }] : []));
  });
}

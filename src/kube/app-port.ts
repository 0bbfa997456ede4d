import { isObject, ManifestError, type JsonObject, type ManifestPath } from './manifest.js';
import { containersOf } from './pod-templates.js';
import { ANNOTATIONS, PORTS } from './sidecar-layout.js';

const RESERVED_PORTS = new Set<number>([PORTS.inbound.port, PORTS.outbound.port, PORTS.admin.port]);
const RESERVED_NAMES = new Set<string>([PORTS.inbound.name, PORTS.admin.name]);

interface DeclaredPort {
  port: number;
  name?: string;
  path: ManifestPath;
  /** Declared by a regular container (the app), not an init container. */
  app: boolean;
}

function declaredPorts(podSpec: JsonObject, specPath: ManifestPath): DeclaredPort[] {
  const out: DeclaredPort[] = [];
  for (const { container, path, app } of containersOf(podSpec, specPath)) {
    if (!Array.isArray(container.ports)) continue;
    container.ports.forEach((p, pi) => {
      if (!isObject(p) || typeof p.containerPort !== 'number') return;
      if (p.protocol !== undefined && p.protocol !== 'TCP') return;
      out.push({ port: p.containerPort, ...(typeof p.name === 'string' ? { name: p.name } : {}), path: [...path, 'ports', pi], app });
    });
  }
  return out;
}

/**
 * The app port the sidecar's inbound listener forwards to: the `meshward.io/app-port` annotation (a number or a
 * containerPort name), else the first TCP containerPort the app's containers declare, else none (a pod that only
 * makes calls, such as most Jobs, gets no inbound listener). Ports and names the sidecar needs are refused here,
 * where the path can be named, rather than as a bind error in a running pod.
 */
export function selectAppPort(templatePath: ManifestPath, annotations: Record<string, unknown>, podSpec: JsonObject): number | undefined {
  const specPath = [...templatePath, 'spec'];
  const ports = declaredPorts(podSpec, specPath);
  for (const p of ports) {
    if (RESERVED_PORTS.has(p.port)) throw new ManifestError([...p.path, 'containerPort'], `port ${p.port} is used by the meshward sidecar; move the app to another port`);
    if (p.name !== undefined && RESERVED_NAMES.has(p.name)) throw new ManifestError([...p.path, 'name'], `the port name "${p.name}" is reserved for the meshward sidecar`);
  }
  const chosen = annotations[ANNOTATIONS.appPort];
  if (chosen === undefined) return ports.find((p) => p.app)?.port;
  const where = [...templatePath, 'metadata', 'annotations', ANNOTATIONS.appPort];
  if (typeof chosen !== 'string') throw new ManifestError(where, 'must be a string (a port number or a containerPort name)');
  if (/^\d+$/.test(chosen)) {
    const port = Number(chosen);
    if (port < 1 || port > 65535) throw new ManifestError(where, `"${chosen}" is not a port from 1 to 65535`);
    if (RESERVED_PORTS.has(port)) throw new ManifestError(where, `port ${port} is used by the meshward sidecar`);
    return port;
  }
  const named = ports.find((p) => p.name === chosen);
  if (!named) throw new ManifestError(where, `no containerPort is named "${chosen}"`);
  return named.port;
}

import type { AppProtocol } from '../config/index.js';
import { isObject, ManifestError, type JsonObject, type ManifestPath } from './manifest.js';
import { containersOf } from './pod-templates.js';
import { ANNOTATIONS, PORTS } from './sidecar-layout.js';

// Which app ports the sidecar stands in front of, and the inbound listener of each. Capture cannot tell the sidecar
// which port a redirected connection was for (Node.js cannot read the original destination), so every app port gets
// a listener of its own: the first 15006 (`meshward-in`), the next 15007 (`meshward-in-2`), and so on. Pure; a
// refusal names the path.

const RESERVED_PORTS = new Set<number>([PORTS.inbound.port, PORTS.outbound.port, PORTS.admin.port]);
const RESERVED_NAMES = new Set<string>([PORTS.inbound.name, PORTS.admin.name]);

export interface AppPort {
  port: number;
  /** What the app speaks there, from the port's name (see protocolOfPortName). */
  protocol: AppProtocol;
}

export interface InboundListener {
  /** The sidecar's port for it. */
  port: number;
  /** The sidecar's containerPort name for it. */
  name: string;
  app: AppPort;
}

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

const PORT_NAME_PROTOCOLS: Record<string, AppProtocol> = { grpc: 'h2c', http2: 'h2c', h2c: 'h2c', tcp: 'tcp', tls: 'tcp', https: 'tcp', mongo: 'tcp', mysql: 'tcp', redis: 'tcp' };

/**
 * The protocol a containerPort's name says, by the convention Istio's users name ports with (`PROTOCOL` or
 * `PROTOCOL-SUFFIX`): gRPC and HTTP/2 are sent on as h2c, TCP and protocols meshward does not read (TLS, databases)
 * as bytes, anything else (`http`, `grpc-web`, no name) as HTTP/1.1.
 */
export function protocolOfPortName(name: string | undefined): AppProtocol {
  const lower = name?.toLowerCase() ?? '';
  if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return 'http';
  return PORT_NAME_PROTOCOLS[lower.split('-')[0]!] ?? 'http';
}

/** The i-th inbound listener (from 0): 15006 `meshward-in`, then 15007 `meshward-in-2`, ... */
function listenerFor(app: AppPort, i: number): InboundListener {
  return { port: PORTS.inbound.port + i, name: i === 0 ? PORTS.inbound.name : `${PORTS.inbound.name}-${i + 1}`, app };
}

/**
 * The app ports the sidecar gets an inbound listener for, in order: those the `meshward.io/app-port` annotation
 * lists (numbers or containerPort names, comma-separated), else every TCP containerPort the app's containers
 * declare that `captured` says capture takes to the sidecar (a probe or metrics port excluded from capture needs
 * none). None: a pod that only makes calls, such as most Jobs, gets no inbound listener. Ports and names the
 * sidecar needs are refused here, where the path can be named, rather than as a bind error in a running pod.
 */
export function selectAppPorts(templatePath: ManifestPath, annotations: Record<string, unknown>, podSpec: JsonObject, captured: (port: number) => boolean): InboundListener[] {
  const specPath = [...templatePath, 'spec'];
  const ports = declaredPorts(podSpec, specPath);
  for (const p of ports) {
    if (RESERVED_PORTS.has(p.port)) throw new ManifestError([...p.path, 'containerPort'], `port ${p.port} is used by the meshward sidecar; move the app to another port`);
    if (p.name !== undefined && RESERVED_NAMES.has(p.name)) throw new ManifestError([...p.path, 'name'], `the port name "${p.name}" is reserved for the meshward sidecar`);
  }
  const chosen = annotations[ANNOTATIONS.appPort];
  const annotationPath = [...templatePath, 'metadata', 'annotations', ANNOTATIONS.appPort];
  const appPorts =
    chosen === undefined
      ? ports.filter((p) => p.app && captured(p.port)).map((p) => ({ port: p.port, protocol: protocolOfPortName(p.name) }))
      : annotatedPorts(chosen, annotationPath, ports);
  const listeners = appPorts.filter((p, i) => appPorts.findIndex((q) => q.port === p.port) === i).map(listenerFor);
  // Past the first, listeners take ports after 15006: the pod may not use them, nor their names.
  for (const listener of listeners.slice(1)) {
    const why = `is the meshward sidecar's inbound listener for app port ${listener.app.port}; move the app to another one`;
    const taken = ports.find((p) => p.port === listener.port || p.name === listener.name);
    if (taken?.port === listener.port) throw new ManifestError([...taken.path, 'containerPort'], `port ${listener.port} ${why}`);
    if (taken !== undefined) throw new ManifestError([...taken.path, 'name'], `the port name "${listener.name}" ${why}`);
    if (appPorts.some((p) => p.port === listener.port)) throw new ManifestError(annotationPath, `port ${listener.port} ${why}`);
  }
  return listeners;
}

/** `meshward.io/app-port`: port numbers or containerPort names, comma-separated. */
function annotatedPorts(value: unknown, where: ManifestPath, declared: DeclaredPort[]): AppPort[] {
  if (typeof value !== 'string') throw new ManifestError(where, 'must be a string (port numbers or containerPort names, comma-separated)');
  return value.split(',').map((item) => {
    const text = item.trim();
    if (/^\d+$/.test(text)) {
      const port = Number(text);
      if (port < 1 || port > 65535) throw new ManifestError(where, `"${text}" is not a port from 1 to 65535`);
      if (RESERVED_PORTS.has(port)) throw new ManifestError(where, `port ${port} is used by the meshward sidecar`);
      return { port, protocol: protocolOfPortName(declared.find((p) => p.port === port)?.name) };
    }
    const named = declared.find((p) => p.name === text);
    if (!named) throw new ManifestError(where, `no containerPort is named "${text}"`);
    return { port: named.port, protocol: protocolOfPortName(named.name) };
  });
}

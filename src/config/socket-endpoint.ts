import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { ConfigProblem } from './errors.js';
import { fileProblem } from './load.js';
import { isLoopbackHost } from './loopback.js';
import { strictObject } from './strict-object.js';

// Where the sidecar serves its identity to other local processes (Envoy over SDS, SPIFFE-aware programs over the
// Workload API): a Unix socket, whose file permissions decide who may connect and so who gets the private key, or
// for SDS a loopback port (which any local user can reach: for a host where that is acceptable).

export type SocketAddress = { path: string } | { host: string; port: number };

/** The address as logs and gRPC name it: unix:PATH or HOST:PORT. */
export function formatSocketAddress(address: SocketAddress): string {
  if ('path' in address) return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Linux keeps at most 107 bytes of a socket path; the socket is made in a private directory beside the path (a
 * name 8 bytes longer at most) and renamed into place, so the path itself may have 99.
 */
export const MAX_SOCKET_PATH_BYTES = 99;

/** `tcp` parses HOST:PORT for SDS (the sidecar schema's own listener syntax); the Workload API takes a socket only. */
function socketAddress(tcp: z.ZodType<{ host: string; port: number }, string> | undefined) {
  return z.string().transform((value, ctx): SocketAddress => {
    const fail = (why: string) => {
      ctx.addIssue({ code: 'custom', message: `"${value}" ${why}` });
      return z.NEVER;
    };
    if (value.startsWith('unix:')) {
      // unix:///abs/path (gRPC's URI form, as SPIRE writes it) and unix:path (relative to the config's directory).
      const path = value.startsWith('unix://') ? value.slice('unix://'.length) : value.slice('unix:'.length);
      if (path === '' || (value.startsWith('unix://') && !path.startsWith('/'))) return fail('names no socket path: give unix:PATH or unix:///ABSOLUTE/PATH');
      if (path.startsWith('@')) return fail('is an abstract socket, which has no file permissions to keep other users out: give a path');
      if (path.includes('\0')) return fail('holds a NUL byte');
      return { path };
    }
    const address = tcp?.safeParse(value);
    if (!address?.success) return fail(tcp ? 'is not unix:PATH or HOST:PORT on loopback' : 'is not unix:PATH');
    if (!isLoopbackHost(address.data.host)) {
      return fail('is not on loopback: the private key served there would be open to the network; use unix:PATH, or 127.0.0.1, [::1] or localhost');
    }
    return address.data;
  });
}

/** A group by name or number; the loader turns a name into its number. */
const group = z.union([z.string().min(1, 'must name a group or give its GID'), z.number().int().min(0, 'a GID is 0 or more')]);

function socketEndpoint(tcp?: z.ZodType<{ host: string; port: number }, string>) {
  return strictObject({
    listen: socketAddress(tcp),
    /** The socket is made 0660 and owned by this group (its members may connect); without it, 0600. */
    group: group.optional(),
  }).superRefine((value, ctx) => {
    if (value.group !== undefined && !('path' in value.listen)) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'applies to a unix: socket only: a TCP port has no file permissions' });
    }
  });
}

/** `sds`: Envoy's SecretDiscoveryService, on a Unix socket or a loopback HOST:PORT (`tcp` parses that). */
export const sdsEndpoint = (tcp: z.ZodType<{ host: string; port: number }, string>) => socketEndpoint(tcp);
/** `workloadApi`: the SPIFFE Workload API, on a Unix socket only (as the SPIFFE Workload Endpoint specification says). */
export const workloadApiEndpoint = socketEndpoint();

export type SocketEndpointConfig = z.output<typeof workloadApiEndpoint>;

export interface SocketEndpoints {
  sds?: SocketEndpointConfig;
  workloadApi?: SocketEndpointConfig;
}

/**
 * What the loader checks before anything starts: a Unix socket's path is made absolute (against the config's
 * directory), fits, lies in a directory that can be written, and names no file that is not a socket (a stale socket
 * left by a crash is replaced; anything else is never overwritten); a group name becomes its GID. sds and
 * workloadApi may share one socket (as on SPIRE's agent), and then one group.
 */
export function checkSocketEndpoints(endpoints: SocketEndpoints, resolvePath: (path: string) => string, problems: ConfigProblem[]): SocketEndpoints {
  const checked: SocketEndpoints = {};
  for (const field of ['sds', 'workloadApi'] as const) {
    const endpoint = endpoints[field];
    if (endpoint) checked[field] = checkSocketEndpoint(endpoint, field, resolvePath, problems);
  }
  const { sds, workloadApi } = checked;
  if (sds && workloadApi && formatSocketAddress(sds.listen) === formatSocketAddress(workloadApi.listen) && sds.group !== workloadApi.group) {
    problems.push({ path: ['workloadApi', 'group'], message: 'sds and workloadApi share one socket, so they must give the same group (or none)' });
  }
  return checked;
}

function checkSocketEndpoint(endpoint: SocketEndpointConfig, field: string, resolvePath: (path: string) => string, problems: ConfigProblem[]): SocketEndpointConfig {
  if (!('path' in endpoint.listen)) return endpoint;
  const path = resolvePath(endpoint.listen.path);
  const problem = socketPathProblem(path);
  if (problem) problems.push({ path: [field, 'listen'], message: problem });
  let gid = endpoint.group;
  if (typeof gid === 'string') {
    const found = groupId(gid);
    if (typeof found === 'string') problems.push({ path: [field, 'group'], message: found });
    else gid = found;
  }
  return { listen: { path }, ...(gid !== undefined ? { group: gid } : {}) };
}

function socketPathProblem(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) return `${path} is ${bytes} bytes long; a socket path may have at most ${MAX_SOCKET_PATH_BYTES} here`;
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `the socket's directory ${dir} does not exist`;
    return `the socket's directory ${dir} cannot be written: ${fileProblem(err)}`;
  }
  try {
    if (!lstatSync(path).isSocket()) return `${path} exists and is not a socket; it is never overwritten: remove it or choose another path`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${path} cannot be checked: ${fileProblem(err)}`;
  }
  return undefined;
}

/** A group's GID (a number given as text is taken as one), or why there is none. Asks NSS, as `ls -l` would. */
export function groupId(name: string | number): number | string {
  if (typeof name === 'number') return name;
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const entry = execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return Number(entry.split(':')[2]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `cannot look up the group "${name}" (no getent on this system): give its GID`;
    return `there is no group "${name}" on this system`;
  }
}

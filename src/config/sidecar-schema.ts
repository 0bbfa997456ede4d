import { z } from 'zod';
import { parseSpiffeId, parseSvidId } from '../spiffe/id.js';
import { LOG_LEVELS } from '../telemetry/logger.js';
import { parseDuration } from './duration.js';
import { sdsEndpoint, workloadApiEndpoint } from './socket-endpoint.js';
import { formatPath } from './errors.js';
import { strictObject } from './strict-object.js';

// The sidecar's config file (the contract of `meshward sidecar --config`, issue 4). Everything that can be checked
// without opening a socket is checked here, so that a bad file is refused at start (and at reload) with its path
// and reason. Durations become milliseconds and addresses become {host, port}; file paths stay as written and are
// resolved against the config file's directory by the loader.

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/;

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port`, with brackets around an IPv6 address: what sockets and URLs take. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function hostPort(what: string, allowZero: boolean) {
  return z.string().transform((value, ctx): HostPort => {
    const match = HOST_PORT.exec(value);
    const port = Number(match?.[3]);
    if (!match || port > 65535 || (!allowZero && port === 0)) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not HOST:PORT (or [IPv6]:PORT) for ${what}` });
      return z.NEVER;
    }
    return { host: match[1] ?? match[2]!, port };
  });
}

const listen = hostPort('a listener (port 0 picks a free one)', true);

function duration(what: string) {
  return z.string().transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${parsed.error}` });
      return z.NEVER;
    }
    // At least 1 ms: 0 would mean "no limit" to Node.
    return Math.max(1, Math.round(parsed.seconds * 1000));
  });
}

/** The ID of an SVID: a route's server, or the sidecar's own. */
const spiffeId = z.string().superRefine((value, ctx) => {
  const id = parseSvidId(value);
  if (!id.ok) ctx.addIssue({ code: 'custom', message: id.error });
});

const DEFAULT_AUDIT_FILE_BYTES = 64 * 1024 * 1024;
const DEFAULT_WARM_UP_REQUESTS = 2000;

const size = (what: string, max: number) =>
  z.number().int(`${what} must be a whole number of bytes`).min(1, `${what} must be at least 1 byte`).max(max, `${what} must be at most ${max} bytes`);

const count = (what: string, max: number) =>
  z.number().int(`${what} must be a whole number`).min(1, `${what} must be at least 1`).max(max, `${what} must be at most ${max}`);

/** `env:NAME` or `file:PATH`: a secret is never written into the config itself. */
const secretRef = z.string().superRefine((value, ctx) => {
  if (!/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(value) && !/^file:.+$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'must be env:VARIABLE or file:PATH (the token itself never goes in the config)' });
  }
});

export type AppProtocol = 'http' | 'h2c' | 'tcp';

/** http://HOST:PORT (HTTP/1.1), h2c://HOST:PORT (HTTP/2 without TLS, e.g. gRPC), tcp://HOST:PORT (bytes). */
const appUrl = z.string().transform((value, ctx): { protocol: AppProtocol; address: HostPort } => {
  const match = /^(http|h2c|tcp):\/\/([^/?#]+)\/?$/.exec(value);
  const address = match ? HOST_PORT.exec(match[2]!) : null;
  const port = Number(address?.[3]);
  if (!match || !address || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not http://HOST:PORT, h2c://HOST:PORT or tcp://HOST:PORT` });
    return z.NEVER;
  }
  return { protocol: match[1] as AppProtocol, address: { host: address[1] ?? address[2]!, port } };
});

const tlsVersion = z.enum(['TLSv1.3', 'TLSv1.2'], { error: 'must be TLSv1.3 (the default) or TLSv1.2' });

const limits = strictObject({
  /** Request line and headers together; larger is refused with 431. */
  maxHeaderBytes: size('maxHeaderBytes', 1024 * 1024).default(16 * 1024),
  /** A larger body (declared or streamed) is refused with 413. */
  maxBodyBytes: size('maxBodyBytes', 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  /** The request line and headers must arrive within this (slow-loris). */
  headersTimeout: duration('headersTimeout').default(10_000),
  /** The whole request must arrive, and the app's response headers, within this; else 408 or 504. */
  requestTimeout: duration('requestTimeout').default(30_000),
  /** An idle keep-alive connection is closed after this. */
  idleTimeout: duration('idleTimeout').default(60_000),
  /** The TLS handshake must finish within this (inbound). */
  handshakeTimeout: duration('handshakeTimeout').default(5_000),
  maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
  /** HTTP/2: streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: count('maxConcurrentStreams', 1_000_000).default(256),
  /** HTTP/2: streams open at once over all of one peer's connections; more are refused (REFUSED_STREAM). */
  maxConcurrentStreamsPerPeer: count('maxConcurrentStreamsPerPeer', 10_000_000).default(1024),
  /** HTTP/2: stream resets (and refused streams) one connection may cause in any 10 s; more: GOAWAY. */
  maxResetsPerConnection: count('maxResetsPerConnection', 1_000_000).default(300),
  /** HTTP/2: the same over all of one peer's connections; more: the peer is cut off for peerCooldown. */
  maxResetsPerPeer: count('maxResetsPerPeer', 10_000_000).default(2000),
  /** How long a peer cut off for too many resets has its new connections refused. */
  peerCooldown: duration('peerCooldown').default(30_000),
}).superRefine((value, ctx) => {
  // Node refuses a server whose headers may take longer than the whole request.
  if (value.headersTimeout > value.requestTimeout) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeout'], message: `must not be longer than requestTimeout (${value.requestTimeout} ms)` });
  }
});

export const defaultLimits = limits.parse({});

export type Limits = z.output<typeof limits>;

/** A remote ext_authz server: `inbound.extAuthz`, and the `authz` filter's `extAuthz`. */
export const extAuthzSettings = strictObject({
  address: hostPort('the ext_authz server', false),
  timeout: duration('timeout').default(200),
  /** Let requests through when the server fails or times out. Off by default: fail closed. */
  failOpen: z.boolean().default(false),
});

/** Header names with `_`: dropped (the default), refused with 400, or let through (Envoy's headers_with_underscores_action). */
export const headersWithUnderscores = z.enum(['drop', 'reject', 'allow'], { error: 'must be drop (the default), reject or allow' }).default('drop');

/** One entry of a listener's `filters:` list: a built-in filter by name, or a custom filter's ES module. */
export type FilterEntry = { name: string; settings: unknown } | { module: string; settings: unknown };

/**
 * `- NAME: {settings}` (settings may be left out), or `- module: ./file.mjs` with its own settings beside it
 * (`settings: {...}`). Only the shape is checked here; what a name stands for and its settings are checked when the
 * chain is built (filters/filter-list.ts), with errors naming the same path.
 */
export const filterEntry = z.record(z.string(), z.unknown()).transform((entry, ctx): FilterEntry => {
  const keys = Object.keys(entry);
  if (typeof entry.module === 'string' && keys.every((k) => k === 'module' || k === 'settings')) {
    if (entry.module === '') ctx.addIssue({ code: 'custom', path: ['module'], message: 'must name an ES module file' });
    return { module: entry.module, settings: entry.settings ?? {} };
  }
  if (keys.length !== 1 || keys[0] === 'module') {
    ctx.addIssue({ code: 'custom', message: `each filter is "- NAME: {settings}" or "- module: ./file.mjs" (with "settings:" beside it); this one has ${keys.length === 0 ? 'no key' : `the keys ${keys.join(', ')}`}` });
    return z.NEVER;
  }
  return { name: keys[0]!, settings: entry[keys[0]!] ?? {} };
});

/** A listener's ordered chain (filters/filter-list.ts says what may go where). */
const filters = z.array(filterEntry).optional();

const inbound = strictObject({
  listen,
  app: appUrl,
  headersWithUnderscores,
  policy: z.string().min(1).optional(),
  extAuthz: extAuthzSettings.optional(),
  minTlsVersion: tlsVersion.default('TLSv1.3'),
  limits: limits.default(defaultLimits),
  filters,
}).superRefine((value, ctx) => {
  // policy and extAuthz are shorthand for the authz filter's settings; without either, an authz entry must give them.
  const authzEntry = value.filters?.some((entry) => 'name' in entry && entry.name === 'authz') ?? false;
  if (value.policy !== undefined && value.extAuthz !== undefined) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server)' });
  } else if (value.policy === undefined && value.extAuthz === undefined && !authzEntry) {
    const filterToo = value.filters === undefined ? '' : ', or an authz filter in filters';
    ctx.addIssue({ code: 'custom', message: `give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server)${filterToo}: an inbound chain that does not authorize is refused (meshward denies by default)` });
  }
});

/**
 * `inbound:` is one listener, or a list of them where the app has several ports: a redirected connection's original
 * port cannot be read in Node.js, so each app port needs a listener of its own, whose port tells which app port
 * was called.
 */
const inbounds = z.union([inbound, z.array(inbound).min(1)]);

export type InboundConfig = z.output<typeof inbound>;

export interface InboundEntry {
  inbound: InboundConfig;
  /** Where it is written: ['inbound'], or ['inbound', i] in a list. */
  path: Array<string | number>;
}

/** Every inbound listener of a config, with the path that names it in errors. */
export function inboundEntries(inbound: InboundConfig | InboundConfig[] | undefined): InboundEntry[] {
  if (inbound === undefined) return [];
  return Array.isArray(inbound) ? inbound.map((entry, i) => ({ inbound: entry, path: ['inbound', i] })) : [{ inbound, path: ['inbound'] }];
}

const route = strictObject({
  /**
   * Matched against Host / :authority, case-insensitive: `NAME` for any port, `NAME:PORT` for calls to that port
   * (which take it before a route for NAME), so that a service's ports can go to different listeners.
   */
  host: z
    .string()
    .min(1, 'must name the Host the app calls')
    .transform((h) => h.toLowerCase())
    .superRefine((host, ctx) => {
      const port = /^(?:\[[^\]]*\]|[^:[\]]+):(\d*)$/.exec(host)?.[1];
      if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
        ctx.addIssue({ code: 'custom', message: `"${host}" is not NAME or NAME:PORT (a port from 1 to 65535)` });
      }
    }),
  /** The destination's inbound listener. */
  address: hostPort('the destination sidecar', false),
  /** The identity the server must prove. */
  spiffeId,
  /** This route's changes to the listener's filters: `NAME: false` turns one off, `NAME: {settings}` replaces its settings. */
  filters: z.record(z.string(), z.unknown()).optional(),
});

const outbound = strictObject({
  listen,
  routes: z.array(route).default([]),
  filters,
  headersWithUnderscores,
  minTlsVersion: tlsVersion.default('TLSv1.3'),
  limits: limits.default(defaultLimits),
}).superRefine((value, ctx) => {
  const seen = new Set<string>();
  value.routes.forEach((r, i) => {
    if (seen.has(r.host)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'host'], message: `"${r.host}" has a route already` });
    seen.add(r.host);
  });
});

/** An ingress route's path prefix: a normalised absolute path (what requests are matched with), or it never matches. */
const pathPrefix = z.string().superRefine((prefix, ctx) => {
  const segments = prefix.split('/').slice(1);
  const normalised = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/.test(prefix) && !segments.some((s, i) => s === '.' || s === '..' || (s === '' && i < segments.length - 1));
  if (!normalised) {
    ctx.addIssue({ code: 'custom', message: `"${prefix}" is not a normalised path ("/", "/api", "/api/"): no "." or ".." segments, no "//", no percent-encoding, query or fragment` });
  }
});

const ingressRoute = strictObject({
  /** Matched against the normalised path, whole segments: /api matches /api and /api/x, never /apix. */
  prefix: pathPrefix,
  /** Absent: any method. */
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an HTTP method in capitals (GET, POST, ...)')).min(1).optional(),
  /** The outbound route (its host, as written there) whose destination gets the request, over mTLS. */
  to: z.string().min(1, 'must name an outbound route\'s host').transform((h) => h.toLowerCase()),
  /** This route's changes to the listener's filters, as an outbound route's. */
  filters: z.record(z.string(), z.unknown()).optional(),
});

/** The edge: clients outside the mesh, over server-authenticated TLS, routed by path and method to mesh destinations. */
const ingress = strictObject({
  listen,
  tls: strictObject({
    /** The certificate chain (leaf first, e.g. an ACME CA's fullchain.pem) and its key; watched, reloaded on change. */
    cert: z.string().min(1),
    key: z.string().min(1),
    /** TLS 1.2 by default: clients outside the mesh are not all on 1.3. */
    minVersion: tlsVersion.default('TLSv1.2'),
  }),
  routes: z.array(ingressRoute).min(1, 'must list at least one route'),
  filters,
  headersWithUnderscores,
  limits: limits.default(defaultLimits),
});

const identity = strictObject({
  files: strictObject({ cert: z.string().min(1), key: z.string().min(1), bundle: z.string().min(1) }).optional(),
  ca: strictObject({
    address: hostPort('the CA', false),
    /** The CA's trust bundle, to trust it with at first (later bundles arrive from the CA). */
    bundle: z.string().min(1),
    spiffeId,
    token: secretRef,
    ttl: duration('ttl').default(3_600_000),
    /**
     * Where the SVID, its key and the bundle are kept, so that a restart within the SVID's life needs no new token.
     * The loader makes the default: <config file name>.state beside the config file.
     */
    stateDir: z.string().min(1).optional(),
    /** How long to keep trying to reach the CA for the first SVID (it may start after the sidecar). */
    startDeadline: duration('startDeadline').default(300_000),
  }).optional(),
}).superRefine((value, ctx) => {
  if ((value.files === undefined) === (value.ca === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one identity source: files or ca' });
  }
});

export const sidecarConfigSchema = strictObject({
  trustDomain: z.string().superRefine((value, ctx) => {
    const id = parseSpiffeId(`spiffe://${value}`);
    if (!id.ok || id.value.path !== '') ctx.addIssue({ code: 'custom', message: `"${value}" is not a trust domain name` });
  }),
  identity,
  inbound: inbounds.optional(),
  outbound: outbound.optional(),
  ingress: ingress.optional(),
  /** Serves the identity to a local Envoy (SecretDiscoveryService) and to SPIFFE-aware programs (Workload API). */
  sds: sdsEndpoint(hostPort('the SDS server', true)).optional(),
  workloadApi: workloadApiEndpoint.optional(),
  admin: strictObject({ listen }).default({ listen: { host: '127.0.0.1', port: 15000 } }),
  audit: strictObject({
    path: z.string().min(1),
    /** The live file is renamed aside (PATH.<time>.<n>) once it would pass this size. */
    maxFileBytes: size('audit.maxFileBytes', 2 ** 40).default(DEFAULT_AUDIT_FILE_BYTES),
    /** Rotated files kept beside the live one; the oldest beyond this are deleted. Absent: all are kept. */
    keepFiles: z.number().int('audit.keepFiles must be a whole number').min(1, 'audit.keepFiles must be at least 1').optional(),
  }).optional(),
  /** MESHWARD_LOG_LEVEL, when set, overrides it. */
  log: strictObject({ level: z.enum(LOG_LEVELS).default('info') }).default({ level: 'info' }),
  /** SIGTERM: how long in-flight requests may take to finish before connections are closed. */
  drainTimeout: duration('drainTimeout').default(10_000),
  /**
   * Requests the sidecar sends through throwaway listeners of its own before /readyz says ready, so that real
   * traffic meets optimised code (proxy/warm-up.ts); `requests: 0` turns it off. It stops at `deadline` whatever
   * it has sent.
   */
  warmUp: strictObject({
    requests: z.number().int('warmUp.requests must be a whole number').min(0).max(100_000).default(DEFAULT_WARM_UP_REQUESTS),
    deadline: duration('warmUp.deadline').default(5_000),
  }).default({ requests: DEFAULT_WARM_UP_REQUESTS, deadline: 5_000 }),
}).superRefine((value, ctx) => {
  // (An ingress alone is refused below: its routes name outbound routes.)
  if (value.inbound === undefined && value.outbound === undefined && value.ingress === undefined && value.sds === undefined && value.workloadApi === undefined) {
    ctx.addIssue({ code: 'custom', message: 'give inbound, outbound, sds or workloadApi (any of them, or several): a sidecar with none has nothing to do' });
  }
  const ports = new Map<number, InboundEntry>();
  for (const entry of inboundEntries(value.inbound)) {
    const { port } = entry.inbound.listen;
    const first = ports.get(port);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: [...entry.path, 'listen'], message: `port ${port} is ${formatPath(first.path)}'s already: each inbound listener needs a port of its own` });
    } else if (port !== 0) {
      ports.set(port, entry);
    }
  }
  const routes = value.outbound?.routes ?? [];
  routes.forEach((r, i) => {
    if (!r.spiffeId.startsWith(`spiffe://${value.trustDomain}/`)) {
      ctx.addIssue({ code: 'custom', path: ['outbound', 'routes', i, 'spiffeId'], message: `${r.spiffeId} is not in the trust domain ${value.trustDomain}` });
    }
  });
  const routed = new Set(routes.map((r) => r.host));
  value.ingress?.routes.forEach((r, i) => {
    if (!routed.has(r.to)) {
      const none = value.outbound === undefined ? ' (there is no outbound listener: its routes are where ingress routes go)' : '';
      ctx.addIssue({ code: 'custom', path: ['ingress', 'routes', i, 'to'], message: `no outbound route for host "${r.to}"${none}` });
    }
  });
  const ca = value.identity.ca;
  if (ca && !ca.spiffeId.startsWith(`spiffe://${value.trustDomain}/`)) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'ca', 'spiffeId'], message: `${ca.spiffeId} is not in the trust domain ${value.trustDomain}` });
  }
});

export type SidecarConfig = z.output<typeof sidecarConfigSchema> & {
  /** Set by the loader: the config file's directory, where relative paths in filter settings start. */
  configDir?: string;
};
export type OutboundConfig = NonNullable<SidecarConfig['outbound']>;
export type OutboundRouteConfig = OutboundConfig['routes'][number];
export type IngressConfig = NonNullable<SidecarConfig['ingress']>;
export type IngressRouteConfig = IngressConfig['routes'][number];

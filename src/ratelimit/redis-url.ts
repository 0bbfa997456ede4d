// `--redis` / `store:` URLs. redis://HOST:PORT (plain), rediss://HOST:PORT (TLS), an optional user before `@` and a
// database number after `/`; `?cluster=true` makes the hosts (comma-separated) seed nodes of a Redis Cluster, whose
// other nodes are discovered. A password in the URL is refused: URLs end up in configs, process lists and logs, so
// the password comes from env:NAME or file:PATH instead.

export interface RedisNode {
  host: string;
  port: number;
}

export interface RedisTarget {
  tls: boolean;
  nodes: RedisNode[];
  cluster: boolean;
  username?: string;
  db: number;
  /** The URL as given, safe to log (it holds no password). */
  display: string;
}

const URL_SHAPE = /^(rediss?):\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/(\d*))?(?:\?([^#]*))?$/;
const NODE = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\],]+))(?::(\d{1,5}))?$/;
const DEFAULT_PORT = 6379;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseRedisUrl(url: string): Parsed<RedisTarget> {
  const fail = (reason: string): Parsed<RedisTarget> => ({ ok: false, error: `"${redactPassword(url)}": ${reason}` });
  const match = URL_SHAPE.exec(url.trim());
  if (!match) return fail('is not redis://HOST:PORT or rediss://HOST:PORT (TLS)');
  const [, scheme, userinfo, hostList, dbText, query] = match;
  if (userinfo?.includes(':')) return fail('has a password in it; give it as env:NAME or file:PATH instead (--redis-password, or `password:` in a config)');
  const nodes: RedisNode[] = [];
  for (const part of hostList!.split(',')) {
    const node = NODE.exec(part);
    const port = node?.[3] === undefined ? DEFAULT_PORT : Number(node[3]);
    if (!node || port < 1 || port > 65535) return fail(`"${part}" is not HOST:PORT (or [IPv6]:PORT)`);
    nodes.push({ host: node[1] ?? node[2]!, port });
  }
  let cluster = false;
  for (const [name, value] of new URLSearchParams(query ?? '')) {
    if (name !== 'cluster') return fail(`unknown parameter "${name}" (known: cluster)`);
    if (value !== 'true' && value !== 'false') return fail(`cluster must be true or false, not "${value}"`);
    cluster = value === 'true';
  }
  if (nodes.length > 1 && !cluster) return fail('several hosts are the seed nodes of a Redis Cluster: add ?cluster=true');
  const db = dbText ? Number(dbText) : 0;
  if (cluster && db !== 0) return fail('a Redis Cluster has only database 0');
  return { ok: true, value: { tls: scheme === 'rediss', nodes, cluster, ...(userinfo ? { username: decodeURIComponent(userinfo) } : {}), db, display: url.trim() } };
}

/** The URL with anything after a `:` in its user part hidden, for an error that quotes a refused URL. */
function redactPassword(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*):[^@/]*@/, '$1:[redacted]@');
}

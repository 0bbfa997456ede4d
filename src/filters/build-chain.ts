import { ConfigError, FieldError, formatPath, inboundEntries, type FilterEntry, type IngressConfig, type InboundConfig, type OutboundConfig, type SidecarConfig } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { authz, type AuthzSettings } from './authz/authz-filter.js';
import { chainOf, type Chain } from './chain.js';
import { checkSettings, ConfigProblems, planFilterList, type PlannedFilter } from './filter-list.js';
import type { FilterEnvironment, FilterFactory, HttpFilter } from './http-filter.js';
import { peerAuthentication } from './peer-authentication.js';
import { headerChecks } from './request-header-checks.js';
import { rateLimit, type RateLimitSettings } from './rate-limit/rate-limit-filter.js';
import { limits } from './request-limits.js';

// A listener's chains, built from its config at start-up (and by `meshward sidecar --check-config`, which builds them
// and closes them again): what the listener runs, and the handles the process needs for them (SIGHUP reloads, reload
// metrics, close). The order rules (docs/filters.md):
// - every listener starts with the header checks (which also take forged identity headers out of what filters see)
//   and the limits; inbound, peer authentication follows; a `filters:` list comes after them and cannot name them;
// - an inbound chain authorizes: `authz` is in its list, or added at its end from `policy` / `extAuthz`; a chain
//   without it is refused (default deny). A tcp:// app's chain has nothing but authz after the peer check;
// - outbound and ingress, the header checks run before routing (the route is chosen by the host, or the path, they
//   check); a route may turn a filter of the list off (`NAME: false`) or give it other settings, never add or move
//   one. Ingress has no peer authentication: its clients are outside the mesh and hold no SVID.

export interface FilterSet {
  /** SIGHUP: every filter reads its files again. */
  reload(): Promise<void>;
  /** Reloads of files the filters keep in force (the policy), summed; undefined when no filter keeps any. */
  reloadStats(): ReloadStats | undefined;
  close(): Promise<void>;
}

export interface InboundChain extends FilterSet {
  readonly chain: Chain;
}

export interface OutboundChains extends FilterSet {
  /** Runs before routing: the route is chosen by the host it checks. */
  readonly headerChecks: HttpFilter;
  /** The chain of a routed host's requests (its route's changes applied): the route for host:port, else for host. */
  chainFor(host: string, port: number): Chain;
}

export interface IngressChains extends FilterSet {
  /** Runs before routing, as outbound. */
  readonly headerChecks: HttpFilter;
  /** The chain of each route, in the config's order (its changes applied). */
  readonly routeChains: readonly Chain[];
  /** The listener's own chain, no route's changes applied. */
  readonly base: Chain;
}

/** `path`: where the listener is in the config (`inbound`, or `inbound[1]` in a list), for the errors. */
export async function buildInboundChain(inbound: InboundConfig, env: FilterEnvironment, path: ReadonlyArray<string | number> = ['inbound']): Promise<InboundChain> {
  const planned = await planInbound(inbound, path);
  return built(env, async (make) => {
    const http = inbound.app.protocol === 'tcp' ? [] : [await make(headerChecks, { headersWithUnderscores: inbound.headersWithUnderscores })];
    const fixed = [...http, await make(limits, inbound.limits), await make(peerAuthentication, {})];
    const listed: HttpFilter[] = [];
    for (const filter of planned) listed.push(await make(filter.factory, filter.settings, filter.at));
    return { chain: chainOf([...fixed, ...listed]) };
  });
}

export async function buildOutboundChains(outbound: OutboundConfig, env: FilterEnvironment): Promise<OutboundChains> {
  const { headerChecks, base, routeChains, ...set } = await buildRoutedChains(outbound, 'outbound', env);
  const byHost = new Map(outbound.routes.map((route, i) => [route.host, routeChains[i]!]));
  return { ...set, headerChecks, chainFor: (host: string, port: number) => byHost.get(`${host}:${port}`) ?? byHost.get(host) ?? base };
}

export async function buildIngressChains(ingress: IngressConfig, env: FilterEnvironment): Promise<IngressChains> {
  return buildRoutedChains(ingress, 'ingress', env);
}

/** A listener that routes (outbound, ingress): its header checks, the chain of its list, and each route's. */
async function buildRoutedChains(
  listener: RoutedListenerConfig,
  name: 'outbound' | 'ingress',
  env: FilterEnvironment,
): Promise<FilterSet & { headerChecks: HttpFilter; base: Chain; routeChains: Chain[] }> {
  const { listed, routes } = await planRouted(listener, name);
  return built(env, async (make) => {
    const checks = await make(headerChecks, { headersWithUnderscores: listener.headersWithUnderscores });
    const first = await make(limits, listener.limits);
    const shared: HttpFilter[] = [];
    for (const filter of listed) shared.push(await make(filter.factory, filter.settings, filter.at));
    const base = chainOf([first, ...shared]);
    const routeChains: Chain[] = [];
    for (const changes of routes) {
      if (changes.size === 0) {
        routeChains.push(base);
        continue;
      }
      const filters = [first];
      for (const [i, filter] of listed.entries()) {
        const change = changes.get(filter.factory.name);
        if (change === undefined) filters.push(shared[i]!);
        else if (change.off !== true) filters.push(await make(filter.factory, change.settings, change.at));
      }
      routeChains.push(chainOf(filters));
    }
    return { headerChecks: checks, base, routeChains };
  });
}

/**
 * `meshward sidecar --check-config`: builds every listener's chains as the sidecar would (files read, modules loaded,
 * settings checked) and closes them again. Throws what is wrong; returns each listener's filters, in order.
 */
export async function checkChains(config: SidecarConfig, logger: Logger): Promise<Record<string, string[]>> {
  const env = (listener: FilterEnvironment['listener'], tls: boolean): FilterEnvironment => ({ configDir: config.configDir ?? process.cwd(), logger, listener, tls });
  const names = (chain: Chain) => chain.filters.map((f) => f.name);
  // Keyed by where each listener is in the config: `inbound`, or `inbound[0]`, `inbound[1]`... in a list.
  const checked: Record<string, string[]> = {};
  for (const { inbound, path } of inboundEntries(config.inbound)) {
    const built = await buildInboundChain(inbound, env('inbound', true), path);
    checked[formatPath(path)] = names(built.chain);
    await built.close();
  }
  if (config.outbound) {
    const outbound = await buildOutboundChains(config.outbound, env('outbound', false));
    checked.outbound = [outbound.headerChecks.name, ...names(outbound.chainFor('', 0))];
    await outbound.close();
  }
  if (config.ingress) {
    const ingress = await buildIngressChains(config.ingress, env('ingress', true));
    checked.ingress = [ingress.headerChecks.name, ...names(ingress.base)];
    await ingress.close();
  }
  return checked;
}

async function planInbound(inbound: InboundConfig, path: ReadonlyArray<string | number>): Promise<PlannedFilter[]> {
  const problems = new ConfigProblems();
  // inbound.policy and inbound.extAuthz are shorthand for the authz filter's settings.
  const field = inbound.extAuthz !== undefined ? 'extAuthz' : inbound.policy !== undefined ? 'policy' : undefined;
  const settings: AuthzSettings = inbound.extAuthz !== undefined ? { extAuthz: inbound.extAuthz } : { policy: inbound.policy! };
  const shorthand = field === undefined ? undefined : { settings, from: `inbound.${field}` };
  const at = [...path, 'filters'];
  const { planned } = await planFilterList(inbound.filters ?? [], at, problems, shorthand ? { authz: shorthand } : {});
  if (!planned.some((p) => p.factory.name === authz.name)) {
    if (field !== undefined) planned.push({ factory: authz, settings, at: [...path, field] });
    else problems.add(at, 'an inbound chain must authorize: add an authz filter, or give inbound.policy or inbound.extAuthz (meshward denies by default)');
  }
  checkOrder(planned, problems);
  if (inbound.app.protocol === 'tcp') {
    for (const filter of planned) {
      if (filter.factory.name !== authz.name) problems.add(filter.at, `a tcp:// app's connections carry no HTTP request for "${filter.factory.name}" to read: only authz judges them`);
    }
  }
  problems.throwIfAny();
  return planned;
}

type RouteChanges = Map<string, { off: true } | { off?: false; settings: unknown; at: ReadonlyArray<PropertyKey> }>;

interface RoutedListenerConfig {
  filters?: FilterEntry[] | undefined;
  routes: ReadonlyArray<{ filters?: Record<string, unknown> | undefined }>;
  headersWithUnderscores: IngressConfig['headersWithUnderscores'];
  limits: IngressConfig['limits'];
}

/** The listener's list, and each route's changes to it (empty for a route that changes nothing), in order. */
async function planRouted(listener: RoutedListenerConfig, name: 'outbound' | 'ingress'): Promise<{ listed: PlannedFilter[]; routes: RouteChanges[] }> {
  const problems = new ConfigProblems();
  const { planned: listed, known } = await planFilterList(listener.filters ?? [], [name, 'filters'], problems);
  checkOrder(listed, problems);
  const routes = listener.routes.map((route, r) => {
    const changes: RouteChanges = new Map();
    for (const [filterName, given] of Object.entries(route.filters ?? {})) {
      const at = [name, 'routes', r, 'filters', filterName];
      const factory = known.get(filterName);
      if (factory === undefined) {
        const names = [...known.keys()];
        problems.add(at, `the ${name} listener has no "${filterName}" filter for this route to change (${names.length === 0 ? 'its filters list is empty' : `it has ${names.join(', ')}`})`);
      } else if (given === false) {
        changes.set(filterName, { off: true });
      } else if (given === null || typeof given !== 'object') {
        problems.add(at, `must be false (off for this route) or the filter's settings for this route`);
      } else {
        const settings = checkSettings(factory, given, at, problems);
        if (settings.ok) changes.set(filterName, { settings: settings.value, at });
      }
    }
    return changes;
  });
  problems.throwIfAny();
  return { listed, routes };
}

/**
 * What a filter reads must be there before it: a rate limit keyed by a JWT claim needs a jwt filter earlier in the
 * list, one keyed by an API key's name an apiKey filter (else every request would fall back to its address unseen).
 */
function checkOrder(planned: readonly PlannedFilter[], problems: ConfigProblems): void {
  planned.forEach((filter, i) => {
    if (filter.factory.name !== rateLimit.name) return;
    (filter.settings as RateLimitSettings).limits.forEach((limit, l) => {
      const needs = limit.per.startsWith('claim:') ? 'jwt' : limit.per === 'apiKey' ? 'apiKey' : undefined;
      if (needs !== undefined && !planned.slice(0, i).some((earlier) => earlier.factory.name === needs)) {
        problems.add([...filter.at, 'limits', l, 'per'], `"${limit.per}" reads what the ${needs} filter puts on the request: list ${needs} before this filter`);
      }
    });
  });
}

type ReloadStats = { reloads: number; rejected: number };
export type Make = <S>(factory: FilterFactory<S>, settings: S, at?: ReadonlyArray<PropertyKey>) => Promise<HttpFilter>;

/** Runs `build` with a maker that remembers every filter it made: to close them all if the build fails, or later. */
export async function built<T>(env: FilterEnvironment, build: (make: Make) => Promise<T>): Promise<T & FilterSet> {
  const made: HttpFilter[] = [];
  const set: FilterSet = {
    reload: async () => {
      await Promise.all(made.map((f) => f.reload?.()));
    },
    reloadStats: () => sumReloads(made.map((f) => f.reloadStats?.())),
    close: async () => {
      for (const filter of made.splice(0).reverse()) await filter.close?.();
    },
  };
  const make: Make = async (factory, settings, at) => {
    let filter: HttpFilter;
    try {
      filter = await factory.create(settings, env);
    } catch (err) {
      // A file of its own that is wrong names itself (a policy file); anything else is about the entry that made it.
      if (err instanceof ConfigError || err instanceof FieldError || at === undefined) throw err;
      throw new FieldError(at, `the ${factory.name} filter cannot start: ${err instanceof Error ? err.message : String(err)}`);
    }
    made.push(filter);
    return filter;
  };
  try {
    return { ...(await build(make)), ...set };
  } catch (err) {
    await set.close();
    throw err;
  }
}

/** Reload counts summed over whoever has any; undefined when none has. */
export function sumReloads(stats: ReadonlyArray<ReloadStats | undefined>): ReloadStats | undefined {
  let total: ReloadStats | undefined;
  for (const s of stats) if (s !== undefined) total = { reloads: (total?.reloads ?? 0) + s.reloads, rejected: (total?.rejected ?? 0) + s.rejected };
  return total;
}

import type { InboundConfig, OutboundConfig } from '../config/index.js';
import { authz, type AuthzSettings } from './authz/authz-filter.js';
import { chainOf, type Chain } from './chain.js';
import type { FilterEnvironment, FilterFactory, HttpFilter } from './http-filter.js';
import { peerAuthentication } from './peer-authentication.js';
import { headerChecks } from './request-header-checks.js';
import { limits } from './request-limits.js';

// A listener's chains, built from its config at start-up: what the listener runs, and the handles the process needs
// for them (SIGHUP reloads, reload metrics, close).

export interface FilterSet {
  /** SIGHUP: every filter reads its files again. */
  reload(): Promise<void>;
  /** Reloads of files the filters keep in force (the policy), summed; undefined when no filter keeps any. */
  reloadStats(): { reloads: number; rejected: number } | undefined;
  close(): Promise<void>;
}

export interface InboundChain extends FilterSet {
  readonly chain: Chain;
}

export interface OutboundChains extends FilterSet {
  /** Runs before routing: the route is chosen by the host it checks. */
  readonly headerChecks: HttpFilter;
  /** The chain of a routed host's requests. */
  chainFor(host: string): Chain;
}

/**
 * Inbound: the header checks, the limits, peer authentication, then authorization. A tcp:// app has no HTTP request
 * for the header checks to read: its chain judges the peer alone.
 */
export async function buildInboundChain(inbound: InboundConfig, env: FilterEnvironment): Promise<InboundChain> {
  return built(env, async (make) => {
    const http = inbound.app.protocol === 'tcp' ? [] : [await make(headerChecks, { headersWithUnderscores: inbound.headersWithUnderscores })];
    const shorthand: AuthzSettings = inbound.extAuthz !== undefined ? { extAuthz: inbound.extAuthz } : { policy: inbound.policy! };
    const filters = [...http, await make(limits, inbound.limits), await make(peerAuthentication, {}), await make(authz, shorthand)];
    return { chain: chainOf(filters) };
  });
}

/** Outbound: the header checks before routing, then the limits. */
export async function buildOutboundChains(outbound: OutboundConfig, env: FilterEnvironment): Promise<OutboundChains> {
  return built(env, async (make) => {
    const checks = await make(headerChecks, { headersWithUnderscores: outbound.headersWithUnderscores });
    const chain = chainOf([await make(limits, outbound.limits)]);
    return { headerChecks: checks, chainFor: () => chain };
  });
}

type Make = <S>(factory: FilterFactory<S>, settings: S) => Promise<HttpFilter>;

/** Runs `build` with a maker that remembers every filter it made: to close them all if the build fails, or later. */
async function built<T>(env: FilterEnvironment, build: (make: Make) => Promise<T>): Promise<T & FilterSet> {
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
  const make: Make = async (factory, settings) => {
    const filter = await factory.create(settings, env);
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

type ReloadStats = { reloads: number; rejected: number };

/** Reload counts summed over whoever has any; undefined when none has. */
export function sumReloads(stats: ReadonlyArray<ReloadStats | undefined>): ReloadStats | undefined {
  let total: ReloadStats | undefined;
  for (const s of stats) if (s !== undefined) total = { reloads: (total?.reloads ?? 0) + s.reloads, rejected: (total?.rejected ?? 0) + s.rejected };
  return total;
}

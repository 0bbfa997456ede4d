import type { ExtProcConfig } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { built, type FilterSet } from './build-chain.js';
import { chainOf, type Chain } from './chain.js';
import { ConfigProblems, planFilterList } from './filter-list.js';
import type { FilterEnvironment, FilterMetrics, HttpFilter } from './http-filter.js';
import { headerChecks } from './request-header-checks.js';
import { limits } from './request-limits.js';

// The chain `meshward extproc` runs for Envoy: a listener's, built by the same rules (docs/filters.md). The header
// checks and the limits come first, then the `filters:` list. No peer authentication and no required authz: Envoy
// verified the TLS peer, and may well authorize with ext_authz; an `authz` filter in the list works as on a listener.

export interface ExtProcChain extends FilterSet {
  readonly chain: Chain;
}

export async function buildExtProcChain(config: ExtProcConfig, logger: Logger, metrics?: FilterMetrics): Promise<ExtProcChain> {
  const problems = new ConfigProblems();
  const { planned } = await planFilterList(config.filters, ['filters'], problems);
  problems.throwIfAny();
  // tls: HSTS is sent. Envoy in front of browsers terminates TLS, and a browser ignores HSTS on a plain connection.
  const env: FilterEnvironment = { configDir: config.configDir, logger, listener: 'extproc', tls: true, ...(metrics ? { metrics } : {}) };
  return built(env, async (make) => {
    const filters: HttpFilter[] = [await make(headerChecks, { headersWithUnderscores: config.headersWithUnderscores }), await make(limits, config.limits)];
    for (const filter of planned) filters.push(await make(filter.factory, filter.settings, filter.at));
    return { chain: chainOf(filters) };
  });
}

import { resolve } from 'node:path';
import { z } from 'zod';
import { PolicyReloader } from '../../authz/index.js';
import { extAuthzSettings, formatHostPort, strictObject } from '../../config/index.js';
import type { FilterFactory } from '../http-filter.js';
import { extAuthzAuthorization } from './ext-authz-authorization.js';
import { policyChainLoader } from './policy-chain.js';
import { policyAuthorization } from './policy-authorization.js';

// `authz`: the decision every inbound chain must make (default deny). Either the in-process policy engine on a policy
// file (watched, reloaded on change and on SIGHUP, the last good one kept), or a remote ext_authz server.
// `inbound.policy` and `inbound.extAuthz` are shorthand for this filter's settings.

const settings = strictObject({
  /** A policy file, relative to the config file's directory. */
  policy: z.string().min(1).optional(),
  extAuthz: extAuthzSettings.optional(),
}).superRefine((value, ctx) => {
  if ((value.policy === undefined) === (value.extAuthz === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server)' });
  }
});

export type AuthzSettings = z.output<typeof settings>;

export const authz: FilterFactory<AuthzSettings> = {
  name: 'authz',
  settings,
  async create(given, env) {
    const observeLatency = env.metrics === undefined ? undefined : (ms: number) => env.metrics!.recordAuthzLatency(ms);
    if (given.extAuthz !== undefined) {
      const { address, timeout, failOpen } = given.extAuthz;
      // The client module (and gRPC) only when a config names a remote server; never ext-authz/index.ts, which
      // also reaches the server, and the server is built on this chain.
      const { ExtAuthzClient } = await import('../../authz/ext-authz/client.js');
      const client = new ExtAuthzClient({ address: formatHostPort(address), timeoutMs: timeout, logger: env.logger });
      return { ...extAuthzAuthorization(client, failOpen, observeLatency), close: () => client.close() };
    }
    const file = resolve(env.configDir, given.policy!);
    if (env.policies !== undefined) {
      const shared = await env.policies.get(file);
      return policyAuthorization(() => shared.current, observeLatency);
    }
    const policy = await PolicyReloader.start(file, policyChainLoader(env.logger), env.logger);
    return {
      ...policyAuthorization(() => policy.current, observeLatency),
      reload: () => policy.reload('SIGHUP'),
      reloadStats: () => policy.stats(),
      close: () => policy.close(),
    };
  },
};

import { createRemoteJWKSet, type RemoteJWKSet, type RemoteJWKSetOptions } from 'jose';
import { systemClock, type Clock } from '../../authz/index.js';
import { MemoryRateLimitStore, type MemoryRateLimitStoreOptions } from '../rate-limit/memory-store.js';

export interface PolicyRuntimeOptions extends MemoryRateLimitStoreOptions {
  clock?: Clock;
  /** Passed to jose's createRemoteJWKSet (timeout, cooldown, cache age). */
  remoteJwks?: RemoteJWKSetOptions;
}

/**
 * What outlives one version of a policy: rate-limit buckets and fetched JWKS. A server that reloads its policy
 * creates one runtime and passes it to every engine it builds, so a reload neither resets rate limits nor refetches
 * keys.
 */
export class PolicyRuntime {
  readonly clock: Clock;
  readonly rateLimits: MemoryRateLimitStore;
  private readonly remoteJwksOptions: RemoteJWKSetOptions | undefined;
  private readonly remoteKeySets = new Map<string, RemoteJWKSet>();

  constructor(options: PolicyRuntimeOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.rateLimits = new MemoryRateLimitStore(this.clock, options);
    this.remoteJwksOptions = options.remoteJwks;
  }

  /** One cached, self-refreshing key set per URL (jose fetches on first use and on an unknown `kid`). */
  remoteKeySet(uri: string): RemoteJWKSet {
    let keySet = this.remoteKeySets.get(uri);
    if (keySet === undefined) {
      keySet = createRemoteJWKSet(new URL(uri), this.remoteJwksOptions);
      this.remoteKeySets.set(uri, keySet);
    }
    return keySet;
  }
}

import { PolicyReloader, type PolicyReloadStats } from '../../authz/index.js';
import type { Logger } from '../../telemetry/index.js';
import { policyChainLoader } from './policy-chain.js';

// The sidecar's policy files. Several inbound listeners may name the same file: it is loaded, watched and reloaded
// once, and they all decide by the same policy at every moment.

/** The policy files in use, each loaded and watched once however many listeners name it. */
export class PolicyFiles {
  private readonly reloaders = new Map<string, PolicyReloader>();

  constructor(private readonly logger: Logger) {}

  async get(file: string): Promise<PolicyReloader> {
    const known = this.reloaders.get(file);
    if (known) return known;
    // A loader (and so a rate-limit and JWKS runtime) of its own per file: two policies never share buckets.
    const reloader = await PolicyReloader.start(file, policyChainLoader(this.logger), this.logger);
    this.reloaders.set(file, reloader);
    return reloader;
  }

  async reload(): Promise<void> {
    await Promise.all([...this.reloaders.values()].map((r) => r.reload('SIGHUP')));
  }

  /** Summed over the files; undefined when no local policy is in use. */
  stats(): PolicyReloadStats | undefined {
    if (this.reloaders.size === 0) return undefined;
    const sum = { reloads: 0, rejected: 0 };
    for (const r of this.reloaders.values()) {
      const { reloads, rejected } = r.stats();
      sum.reloads += reloads;
      sum.rejected += rejected;
    }
    return sum;
  }

  close(): void {
    for (const r of this.reloaders.values()) r.close();
  }
}

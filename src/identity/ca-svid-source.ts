import { generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { CaClient } from '../ca/client.js';
import { makeCsr } from '../ca/csr-make.js';
import type { BundleMessage, SignResponseMessage } from '../ca/proto.js';
import { renewalDelayMs, retryDelayMs } from './renewal-schedule.js';
import type { IdentitySnapshot, Svid, SvidSource } from './svid-source.js';

// An SVID from the meshward CA: a key made here (it never leaves the process), bootstrapped with a one-time join
// token, renewed over mTLS at half-life with jitter, retried with backoff while the CA is unreachable (the current
// SVID keeps serving until it expires). It follows the CA's bundle stream, so a new root is trusted before
// anything is signed with it. Each call to the CA carries a request id that this side's log lines name too, so a
// renewal can be found in the CA's audit log.

export interface CaSvidSourceOptions {
  address: string;
  trustDomain: string;
  /** The roots to trust the CA with at first (its bundle.pem). */
  bootstrapBundlePem: string;
  spiffeId: string;
  joinToken: string;
  ttlSeconds?: number;
  logger?: Logger;
}

export interface CaSvidSourceStats {
  /** Renewal attempts that failed (each is retried with backoff; the current SVID stayed in use). */
  renewalFailures: number;
}

export class CaSvidSource implements SvidSource {
  private snapshot: IdentitySnapshot | undefined;
  private readonly listeners = new Set<(s: IdentitySnapshot) => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopWatching: (() => void) | undefined;
  private watchClient: CaClient | undefined;
  private closed = false;
  private attempt = 0;
  private readonly counters: CaSvidSourceStats = { renewalFailures: 0 };

  private constructor(private readonly opts: CaSvidSourceOptions) {}

  /** Resolves once the first SVID is held; rejects if bootstrap is refused (a refused token will not get better). */
  static async start(opts: CaSvidSourceOptions): Promise<CaSvidSource> {
    const source = new CaSvidSource(opts);
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const client = new CaClient({ address: opts.address, trustDomain: opts.trustDomain, bundlePem: opts.bootstrapBundlePem });
    const requestId = randomUUID();
    try {
      const res = await client.sign({ csr: await makeCsr(key), joinToken: opts.joinToken, spiffeId: opts.spiffeId, metadata: { 'x-request-id': requestId }, ...(opts.ttlSeconds ? { ttlSeconds: opts.ttlSeconds } : {}) });
      source.accept(res, key.export({ type: 'pkcs8', format: 'pem' }) as string, requestId);
    } finally {
      client.close();
    }
    source.watchBundle();
    return source;
  }

  current(): IdentitySnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (s: IdentitySnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): CaSvidSourceStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.stopWatching?.();
    this.watchClient?.close();
  }

  private accept(res: SignResponseMessage, keyPem: string, requestId: string): void {
    const leaf = new X509Certificate(res.certChainPem);
    const svid: Svid = {
      spiffeId: res.spiffeId,
      certChainPem: res.certChainPem,
      keyPem,
      serial: res.serial,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
    this.publish({ svid, bundlePem: res.bundle.pem || this.snapshot?.bundlePem || this.opts.bootstrapBundlePem });
    this.opts.logger?.info({ spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString(), requestId }, 'SVID received');
    this.attempt = 0;
    // The CA back-dates notBefore for clock skew; the lifetime that counts is from now, or a short-lived SVID
    // would be past its half-life on arrival and renew in a tight loop.
    const now = new Date();
    this.schedule(renewalDelayMs(svid.notBefore > now ? svid.notBefore : now, svid.notAfter, now));
  }

  private publish(snapshot: IdentitySnapshot): void {
    this.snapshot = snapshot;
    for (const listener of this.listeners) listener(snapshot);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.renew(), delayMs);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const current = this.snapshot!;
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const client = new CaClient({
      address: this.opts.address,
      trustDomain: this.opts.trustDomain,
      bundlePem: current.bundlePem,
      identity: { certChainPem: current.svid.certChainPem, keyPem: current.svid.keyPem },
    });
    const requestId = randomUUID();
    try {
      const res = await client.sign({ csr: await makeCsr(key), metadata: { 'x-request-id': requestId }, ...(this.opts.ttlSeconds ? { ttlSeconds: this.opts.ttlSeconds } : {}) });
      if (!this.closed) this.accept(res, key.export({ type: 'pkcs8', format: 'pem' }) as string, requestId);
    } catch (err) {
      this.counters.renewalFailures += 1;
      const left = current.svid.notAfter.getTime() - Date.now();
      const delay = retryDelayMs(this.attempt++, left);
      this.opts.logger?.warn({ err: (err as Error).message, requestId, retryInMs: Math.round(delay), secondsToExpiry: Math.round(left / 1000) }, 'SVID renewal failed; keeping the current SVID');
      this.schedule(delay);
    } finally {
      client.close();
    }
  }

  /** Follows the CA's bundle stream; reconnects with backoff when it drops. */
  private watchBundle(attempt = 0): void {
    if (this.closed) return;
    const current = this.snapshot!;
    this.watchClient?.close();
    const client = new CaClient({ address: this.opts.address, trustDomain: this.opts.trustDomain, bundlePem: current.bundlePem });
    this.watchClient = client;
    this.stopWatching = client.watchBundle(
      (bundle: BundleMessage) => {
        attempt = 0;
        if (this.snapshot && bundle.pem && bundle.pem !== this.snapshot.bundlePem) {
          this.opts.logger?.info({ roots: bundle.x509Authorities.length, sequence: bundle.sequence }, 'trust bundle updated');
          this.publish({ svid: this.snapshot.svid, bundlePem: bundle.pem });
        }
      },
      () => {
        if (this.closed) return;
        setTimeout(() => this.watchBundle(attempt + 1), retryDelayMs(attempt, Infinity)).unref();
      },
    );
  }
}

import { generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { CaClient } from '../ca/client.js';
import { makeCsr } from '../ca/csr-make.js';
import type { BundleMessage, SignResponseMessage } from '../ca/proto.js';
import { formatDuration } from '../config/duration.js';
import { describeCaFailure } from './ca-failure.js';
import { renewalDelayMs, retryDelayMs } from './renewal-schedule.js';
import type { SvidStore } from './svid-store.js';
import type { IdentitySnapshot, Svid, SvidSource } from './svid-source.js';

// An SVID from the meshward CA: a key made here (it never leaves the process, or the state directory when one is
// given), bootstrapped with a one-time join token, renewed over mTLS at half-life with jitter, retried with backoff
// while the CA is unreachable (the current SVID keeps serving until it expires). It follows the CA's bundle stream,
// so a new root is trusted before anything is signed with it. Each call to the CA carries a request id that this
// side's log lines name too, so a renewal can be found in the CA's audit log.
//
// The CA may start after its clients (in a cluster it often does): the first SVID is asked for again with backoff,
// one log line per attempt, until a start deadline; a refusal that will not change (a used or expired token) ends
// the start at once.

export interface CaSvidSourceOptions {
  address: string;
  trustDomain: string;
  /** The roots to trust the CA with at first (its bundle.pem). */
  bootstrapBundlePem: string;
  spiffeId: string;
  /** The one-time join token that buys the first SVID; not needed with `stored`. */
  joinToken?: string;
  /** An SVID kept from an earlier run (SvidStore.load), still valid: served at once and renewed over mTLS. */
  stored?: IdentitySnapshot;
  /** Keeps every SVID received (first, renewed) and every new bundle, for the next start. */
  store?: SvidStore;
  /** How long to keep asking for the first SVID while the CA cannot be reached (default 5 minutes). */
  startDeadlineMs?: number;
  ttlSeconds?: number;
  logger?: Logger;
}

export interface CaSvidSourceStats {
  /** Renewal attempts that failed (each is retried with backoff; the current SVID stayed in use). */
  renewalFailures: number;
}

const DEFAULT_START_DEADLINE_MS = 5 * 60_000;
/** One attempt's deadline: a CA that accepted the connection answers well within this. */
const ATTEMPT_DEADLINE_MS = 10_000;
/**
 * The last attempt before the start deadline gets at least this long, so that it can fail for its own reason
 * (connection refused, TLS) rather than for the few milliseconds left; giving up may come this much late.
 */
const LAST_ATTEMPT_MS = 1_000;
/** Backoff while waiting for the CA at start is capped low: a sidecar should be up soon after its CA is. */
const START_RETRY_CAP_MS = 5_000;

export class CaSvidSource implements SvidSource {
  private snapshot: IdentitySnapshot | undefined;
  private readonly listeners = new Set<(s: IdentitySnapshot) => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopWatching: (() => void) | undefined;
  private watchClient: CaClient | undefined;
  private closed = false;
  /** The SVID saves in flight, chained: close() waits for them. */
  private saving: Promise<void> = Promise.resolve();
  private attempt = 0;
  private readonly counters: CaSvidSourceStats = { renewalFailures: 0 };

  private constructor(private readonly opts: CaSvidSourceOptions) {}

  /**
   * Resolves once an SVID is held: the stored one at once, or one bought with the join token. Rejects when the CA
   * refuses the token (that will not get better) or cannot be reached within the start deadline.
   */
  static async start(opts: CaSvidSourceOptions): Promise<CaSvidSource> {
    const source = new CaSvidSource(opts);
    if (opts.stored) source.resume(opts.stored);
    else await source.bootstrap(opts.joinToken ?? '');
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

  failedUpdates(): number {
    return this.counters.renewalFailures;
  }

  stats(): CaSvidSourceStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.stopWatching?.();
    this.watchClient?.close();
    // A save in flight finishes (and logs, if it fails) before the owner closes the log.
    await this.saving;
  }

  /** Serves a kept SVID; renews it at once if it is past half its life. */
  private resume(stored: IdentitySnapshot): void {
    const { svid } = stored;
    this.publish(stored);
    this.opts.logger?.info({ spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString(), stateDir: this.opts.store?.dir }, 'SVID kept from the last run is still valid; no join token used');
    this.schedule(renewalDelayMs(svid.notBefore, svid.notAfter, new Date()));
  }

  private async bootstrap(joinToken: string): Promise<void> {
    const { address, spiffeId, logger } = this.opts;
    const deadlineMs = this.opts.startDeadlineMs ?? DEFAULT_START_DEADLINE_MS;
    const giveUpAt = Date.now() + deadlineMs;
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const csr = await makeCsr(key);
    for (let attempt = 0; ; attempt++) {
      const client = new CaClient({ address, trustDomain: this.opts.trustDomain, bundlePem: this.opts.bootstrapBundlePem });
      const requestId = randomUUID();
      try {
        const res = await client.sign({
          csr,
          joinToken,
          spiffeId,
          metadata: { 'x-request-id': requestId },
          deadlineMs: Math.min(ATTEMPT_DEADLINE_MS, Math.max(LAST_ATTEMPT_MS, giveUpAt - Date.now())),
          ...(this.opts.ttlSeconds ? { ttlSeconds: this.opts.ttlSeconds } : {}),
        });
        this.accept(res, key.export({ type: 'pkcs8', format: 'pem' }) as string, requestId);
        await this.keep();
        return;
      } catch (err) {
        const failure = describeCaFailure(err);
        if (!failure.transient) throw new Error(`cannot get an SVID for ${spiffeId} from the CA at ${address}: ${failure.reason}`);
        const left = giveUpAt - Date.now();
        if (left <= 0) throw new Error(`no SVID from the CA at ${address} within the start deadline (${formatDuration(deadlineMs / 1000)}): ${failure.reason}`);
        const delay = Math.min(retryDelayMs(attempt, Infinity, Math.random, START_RETRY_CAP_MS), left);
        logger?.warn({ address, reason: failure.reason, attempt: attempt + 1, retryInMs: Math.round(delay), requestId }, 'waiting for the CA');
        await sleep(delay);
      } finally {
        client.close();
      }
    }
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

  /** Writes the current SVID and bundle to the state directory; a failure is logged, and the SVID still serves. */
  private async keep(): Promise<void> {
    const { store, logger } = this.opts;
    if (!store || !this.snapshot) return;
    const saved = store.save(this.snapshot).catch((err: Error) => logger?.error({ stateDir: store.dir, err: err.message }, 'the SVID could not be kept; a restart will need a new join token'));
    this.saving = this.saving.then(() => saved);
    await saved;
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
      if (this.closed) return;
      this.accept(res, key.export({ type: 'pkcs8', format: 'pem' }) as string, requestId);
      void this.keep();
    } catch (err) {
      // Closed meanwhile (the CA may be stopping too): nothing to retry, and the log may be closed already.
      if (this.closed) return;
      this.counters.renewalFailures += 1;
      const left = current.svid.notAfter.getTime() - Date.now();
      const delay = retryDelayMs(this.attempt++, left);
      this.opts.logger?.warn({ address: this.opts.address, reason: describeCaFailure(err).reason, requestId, retryInMs: Math.round(delay), secondsToExpiry: Math.round(left / 1000) }, 'SVID renewal failed; keeping the current SVID');
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
          void this.keep();
        }
      },
      () => {
        if (this.closed) return;
        setTimeout(() => this.watchBundle(attempt + 1), retryDelayMs(attempt, Infinity)).unref();
      },
    );
  }
}

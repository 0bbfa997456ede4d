// Counters in Redis, as envoyproxy/ratelimit keeps them: one key per domain, descriptor and window start, counted
// with INCRBY and given the window's length with EXPIRE, both sent in one write (one round trip). ioredis's
// auto-pipelining puts the commands of all hits issued in one tick into one write per node (so concurrent calls
// share writes, as envoyproxy/ratelimit's implicit pipelining does); in a Cluster, to each key's own node.
//
// Failing fast is the point: commands are never queued while Redis is away (enableOfflineQueue: false) and never
// re-sent after a reconnect (a re-sent INCRBY would count twice), and every hit gives up after `timeoutMs`. The
// client reconnects on its own, so counting resumes when Redis is back, without a restart.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { StoreError, systemClock, windowKey, type Clock, type CounterStore, type WindowCount } from './counter-store.js';
import type { RedisTarget } from './redis-url.js';
import { fixedWindow } from './time-unit.js';

export interface RedisCounterStoreOptions {
  target: RedisTarget;
  /** Read from env:NAME or file:PATH by the caller; never logged. */
  password?: string;
  /** CA certificates (PEM) that a rediss:// server's certificate must chain to; the system's roots when absent. */
  ca?: Buffer;
  /** How long a hit may take before it fails (envoyproxy/ratelimit's default Redis timeout is of this order). */
  timeoutMs: number;
  logger: Logger;
  /** Called once per failed hit (the meshward_ratelimit_store_errors_total metric). */
  onError?: (err: StoreError) => void;
  clock?: Clock;
}

/** How long start-up waits for the first connection before serving anyway (with the failure mode in force). */
const CONNECT_WAIT_MS = 3_000;
/** Reconnect attempts back off to this, so that Redis coming back is noticed within a second. */
const MAX_RECONNECT_DELAY_MS = 1_000;
/** While Redis keeps failing, the warning is repeated at most this often. */
const WARN_EVERY_MS = 10_000;

export class RedisCounterStore implements CounterStore {
  readonly description: string;
  private failingSince: number | undefined;
  private lastWarning = 0;

  private constructor(
    private readonly client: Redis | Cluster,
    private readonly options: RedisCounterStoreOptions,
  ) {
    this.description = options.target.display;
  }

  /** Connects (waiting a little for the first connection) and returns the store; an unreachable Redis is a warning, not an error. */
  static async connect(options: RedisCounterStoreOptions): Promise<RedisCounterStore> {
    const client = createClient(options);
    const store = new RedisCounterStore(client, options);
    // Connection errors also fail the hits, which report them; this keeps them from being "unhandled".
    client.on('error', (err: Error) => options.logger.debug({ store: store.description, err: err.message }, 'Redis connection error'));
    const ready = await waitForReady(client, CONNECT_WAIT_MS);
    if (ready) options.logger.info({ store: store.description, cluster: options.target.cluster }, 'Redis connected');
    else options.logger.warn({ store: store.description }, `Redis not reachable within ${CONNECT_WAIT_MS} ms; hits fail (failure mode) until it is`);
    return store;
  }

  async hit(key: string, windowSeconds: number, hits: number): Promise<WindowCount> {
    const window = fixedWindow((this.options.clock ?? systemClock)(), windowSeconds);
    const name = windowKey(key, window.start);
    let count: number;
    try {
      // Issued together, the two commands go out in one write (auto-pipelining), with those of concurrent hits.
      const [value] = await withTimeout(Promise.all([this.client.incrby(name, hits), this.client.expire(name, windowSeconds)]), this.options.timeoutMs);
      count = value;
    } catch (err) {
      throw this.failed(err);
    }
    this.answered();
    return { count, resetSeconds: window.resetSeconds };
  }

  close(): Promise<void> {
    this.client.disconnect();
    return Promise.resolve();
  }

  private failed(err: unknown): StoreError {
    const error = new StoreError(`Redis ${this.description}: ${err instanceof Error ? err.message : String(err)}`);
    this.options.onError?.(error);
    const now = Date.now();
    this.failingSince ??= now;
    if (now - this.lastWarning >= WARN_EVERY_MS) {
      this.lastWarning = now;
      this.options.logger.warn(
        { store: this.description, err: error.message, failingForMs: now - this.failingSince },
        'rate-limit store failed; the failure mode decides until Redis answers again',
      );
    }
    return error;
  }

  private answered(): void {
    if (this.failingSince === undefined) return;
    this.options.logger.info({ store: this.description, failedForMs: Date.now() - this.failingSince }, 'Redis answers again; counting resumed');
    this.failingSince = undefined;
    this.lastWarning = 0;
  }
}

function createClient({ target, password, ca }: RedisCounterStoreOptions): Redis | Cluster {
  const connection: RedisOptions = {
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(password === undefined ? {} : { password }),
    ...(target.tls ? { tls: ca ? { ca } : {} } : {}),
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_WAIT_MS,
    enableAutoPipelining: true,
  };
  const retry = (times: number) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS);
  if (target.cluster) {
    return new Cluster(target.nodes, {
      redisOptions: connection,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
      clusterNodeRetryStrategy: retry,
    });
  }
  const [node] = target.nodes;
  return new Redis({ ...connection, host: node!.host, port: node!.port, db: target.db, enableOfflineQueue: false, retryStrategy: retry });
}

function waitForReady(client: Redis | Cluster, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

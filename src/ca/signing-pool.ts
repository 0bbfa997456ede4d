import { Worker } from 'node:worker_threads';
import { CaError, type CaErrorCode } from './ca-error.js';
import { issueLeaf, type LeafJob } from './issue-leaf.js';
import { SvidSigner, type SignedLeaf, type SigningAuthority } from './svid-signer.js';

// Where the CPU work of issuing (CSR check and signature, issue-leaf.ts) runs. A serving CA with cores to spare runs
// it on a pool of worker threads, so that it is not all on the one thread that also carries TLS, HTTP/2 and the
// CA's state: on its own, that thread was the CA's ceiling while the machine's other cores sat idle. On one or two
// CPUs it signs inline by default (defaultSigningWorkers, below). The state (tokens, records, rotation) stays on
// the main thread, its single owner, which keeps one-time tokens trivially one-time. One-shot commands (`ca issue`,
// `ca sign`) sign inline and start no threads.

export interface LeafSigning {
  /** Jobs issued after this call are signed by `authority`; jobs already issued finish with the previous one. */
  setAuthority(authority: SigningAuthority): void;
  /** Rejects with CaError (a refused CSR), or with an Error for a failure of the CA itself. */
  issue(job: LeafJob): Promise<SignedLeaf>;
  close(): Promise<void>;
}

/**
 * Signing threads when --workers is not given: one per CPU, but none on one or two CPUs. There, signing on the main
 * thread issued as many certificates for about a quarter less CPU each (bench/README.md, "Signing threads on two
 * cores"): a thread costs a message and a wake-up per batch, and buys no rate while every client waits for its
 * record's durable write. Larger machines could not be measured; there the threads relieve the main thread's TLS.
 */
export function defaultSigningWorkers(cpus: number): number {
  return cpus > 2 ? cpus : 0;
}

export class InlineSigning implements LeafSigning {
  private signer: SvidSigner | undefined;

  setAuthority(authority: SigningAuthority): void {
    this.signer = new SvidSigner(authority);
  }

  async issue(job: LeafJob): Promise<SignedLeaf> {
    if (!this.signer) throw new Error('no signing authority set');
    return issueLeaf(this.signer, job);
  }

  async close(): Promise<void> {}
}

/** The messages of the pool's protocol (main thread → worker, and the worker's answers). */
export type PoolMessage =
  | { kind: 'authority'; authority: SigningAuthority }
  | { kind: 'jobs'; jobs: { id: number; job: Omit<LeafJob, 'notBefore' | 'notAfter'> & { notBefore: number; notAfter: number } }[] };

export type PoolResult =
  | { id: number; der: Uint8Array; serialHex: string }
  | { id: number; refusal: { code: CaErrorCode; message: string } }
  | { id: number; failure: string };

interface Pending {
  resolve: (leaf: SignedLeaf) => void;
  reject: (err: Error) => void;
}

type WireJob = Extract<PoolMessage, { kind: 'jobs' }>['jobs'][number];

interface PoolThread {
  worker: Worker;
  inFlight: Map<number, Pending>;
  /** Jobs waiting for the end of this event-loop turn, to go in one message. */
  queued: WireJob[];
}

const WORKER_URL = new URL('./signing-worker.js', import.meta.url);

export class SigningPool implements LeafSigning {
  private readonly threads: PoolThread[] = [];
  private authority: SigningAuthority | undefined;
  private nextId = 1;
  private closing = false;

  /** `onCrash` hears of a worker that died; its jobs fail and a new worker takes its place. */
  constructor(
    readonly size: number,
    private readonly onCrash: (err: Error) => void,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a signing pool needs at least one worker (got ${size})`);
    for (let i = 0; i < size; i++) this.threads.push(this.spawn());
  }

  setAuthority(authority: SigningAuthority): void {
    this.authority = authority;
    for (const thread of this.threads) thread.worker.postMessage({ kind: 'authority', authority } satisfies PoolMessage);
  }

  issue(job: LeafJob): Promise<SignedLeaf> {
    if (this.closing) return Promise.reject(new Error('the signing pool is closed'));
    // The least busy thread: with a closed loop of clients, round-robin would queue behind a slow job.
    let thread = this.threads[0]!;
    for (const t of this.threads) if (t.inFlight.size < thread.inFlight.size) thread = t;
    const id = this.nextId++;
    const { spiffeId, dnsNames, notBefore, notAfter } = job;
    // A copy of its own: posting a view clones the whole buffer under it, which may be a large pooled slab.
    const csr = typeof job.csr === 'string' ? job.csr : new Uint8Array(job.csr);
    return new Promise((resolve, reject) => {
      thread.inFlight.set(id, { resolve, reject });
      // Each message wakes the worker, and on a busy (or virtual) machine the wake-up costs more than the
      // message: everything asked for in one turn of the event loop goes in one message.
      if (thread.queued.push({ id, job: { csr, spiffeId, ...(dnsNames ? { dnsNames } : {}), notBefore: notBefore.getTime(), notAfter: notAfter.getTime() } }) === 1) {
        setImmediate(() => this.flush(thread));
      }
    });
  }

  private flush(thread: PoolThread): void {
    const jobs = thread.queued;
    thread.queued = [];
    if (jobs.length > 0) thread.worker.postMessage({ kind: 'jobs', jobs } satisfies PoolMessage);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(): PoolThread {
    const thread: PoolThread = { worker: new Worker(WORKER_URL), inFlight: new Map(), queued: [] };
    if (this.authority) thread.worker.postMessage({ kind: 'authority', authority: this.authority } satisfies PoolMessage);
    thread.worker.on('message', (results: PoolResult[]) => {
      for (const result of results) {
        const pending = thread.inFlight.get(result.id);
        if (!pending) continue;
        thread.inFlight.delete(result.id);
        if ('der' in result) pending.resolve({ der: Buffer.from(result.der.buffer, result.der.byteOffset, result.der.byteLength), serialHex: result.serialHex });
        else if ('refusal' in result) pending.reject(new CaError(result.refusal.code, result.refusal.message));
        else pending.reject(new Error(`signing worker: ${result.failure}`));
      }
    });
    thread.worker.on('error', (err) => this.replace(thread, err instanceof Error ? err : new Error(String(err))));
    thread.worker.on('exit', (code) => this.replace(thread, new Error(`signing worker exited with code ${code}`)));
    return thread;
  }

  private replace(thread: PoolThread, err: Error): void {
    const index = this.threads.indexOf(thread);
    if (index < 0 || this.closing) return;
    for (const pending of thread.inFlight.values()) pending.reject(err);
    thread.inFlight.clear();
    thread.queued = [];
    this.onCrash(err);
    this.threads[index] = this.spawn();
  }
}

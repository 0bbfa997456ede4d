import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditLog } from '../telemetry/audit-log.js';
import { Batches } from './batches.js';
import { acquireFileLock, othersWaitFor, withFileLock, type HeldLock } from './file-lock.js';

// The CA's audit log is written by more than one process: a running `ca serve` and the offline `ca issue` /
// `ca sign` share DIR/audit.log. A hash chain has one head: two writers that each remember the head they last saw
// would both chain a record to it and fork the chain. So every write happens under a lock on the log, and on taking
// it the writer first makes sure it still holds the head: the file is the one it last wrote (same inode) and as
// long as it left it (same size). If another process wrote in between, the log is reopened, which reads the new
// head from the file. Records appended while a batch is being written go together in the next one, and
// telemetry's AuditLog group-commits each batch in one durable write.
//
// A busy CA keeps the lock from one batch to the next while another is waiting (a lease), for at most LEASE_MS:
// taking it, checking the file and letting go cost five trips to the file system per batch, which under load took
// longer than the durable write itself (bench/README.md, "Where a renewal waits"). At the end of each lease, a
// process waiting for the lock (file-lock.ts's PATH.lock-wanted) gets a turn of TURN_MS before this one takes it
// again, so an offline command waits about a lease; with nobody waiting the lease is simply taken again. An idle CA
// holds nothing.
//
// The lock is file-lock.ts's, on the log itself (it may live outside the CA directory). A log file that vanished
// since this process last wrote it (deleted or moved by hand) is an error, not a reason to start a fresh chain:
// every later append fails until the CA is restarted, so that nothing is issued unrecorded and nobody gets a new
// chain without asking for one. Under a lease, that is found when the lease is next taken, within LEASE_MS; the
// records written meanwhile are in the moved file, on its chain.

/** How long a busy CA keeps the log's lock across batches. */
const LEASE_MS = 100;
/** How long it stays away after a lease when another process waits: longer than the waiter's pause between tries. */
const TURN_MS = 25;

interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
}

export class SharedAuditLog {
  private log: AuditLog | undefined;
  /** The file as this process left it after its last write. */
  private left: FileIdentity | undefined;
  private readonly batches = new Batches<Record<string, unknown>>((records) => this.write(records));
  /** The lock, held across batches while more are waiting. */
  private lease: { lock: HeldLock; since: number } | undefined;
  /** Until when this process leaves the lock to a waiting one. */
  private turnGivenUntil = 0;

  private constructor(readonly path: string) {}

  /** Opens (or creates) the log, so that a log that cannot be written stops a CA from starting. */
  static async open(path: string): Promise<SharedAuditLog> {
    const shared = new SharedAuditLog(path);
    await withFileLock(path, async () => {
      shared.log = await AuditLog.open({ path });
      shared.left = await identityOf(path);
    });
    return shared;
  }

  /** Resolves once the record is on disk, chained to the newest record any process wrote. */
  append(record: Record<string, unknown>): Promise<void> {
    return this.batches.add(record);
  }

  /** Writes what is queued and closes the file; returns the head hash of the log (undefined if it cannot be read). */
  async close(): Promise<string | undefined> {
    await this.batches.settled();
    let head: string | undefined;
    await withFileLock(this.path, async () => {
      head = (await this.current()).headHash;
    }).catch(() => undefined);
    await this.log?.close();
    this.log = undefined;
    return head;
  }

  private async write(records: Record<string, unknown>[]): Promise<void> {
    let lease = this.lease;
    try {
      if (lease === undefined) {
        const away = this.turnGivenUntil - Date.now();
        if (away > 0) await sleep(away);
        lease = this.lease = { lock: await acquireFileLock(this.path), since: Date.now() };
        this.log = await this.current();
      }
      const log = this.log!;
      await Promise.all(records.map((r) => log.append(r)));
      const lost = lease.lock.lost();
      if (lost) throw new Error(`lost the lock on ${this.path}: ${lost.message}`);
    } catch (err) {
      // The in-memory head may now name a record that never reached the file: read it again next time.
      await this.log?.close().catch(() => undefined);
      this.log = undefined;
      await this.endLease();
      throw err;
    }
    if (!this.batches.waiting || Date.now() - lease.since >= LEASE_MS) await this.endLease();
  }

  /** Notes the file as this process leaves it, gives a waiting process its turn, and lets go of the lock. */
  private async endLease(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    this.lease = undefined;
    try {
      if (this.log !== undefined) this.left = await identityOf(this.path);
      if (await othersWaitFor(this.path)) this.turnGivenUntil = Date.now() + TURN_MS;
    } catch {
      // Unsure how the file was left: reopen it (reading the head from the file) when the lease is next taken.
      await this.log?.close().catch(() => undefined);
      this.log = undefined;
    } finally {
      await lease.lock.release();
    }
  }

  /** The log, reopened when another process wrote to it since this one did. */
  private async current(): Promise<AuditLog> {
    const now = await identityOf(this.path);
    if (now === undefined && this.left !== undefined) {
      throw new Error(`${this.path} disappeared while the CA was writing it; restore it, or restart the CA to begin a new chain`);
    }
    if (this.log !== undefined && now !== undefined && sameFile(now, this.left)) return this.log;
    await this.log?.close();
    this.log = await AuditLog.open({ path: this.path });
    return this.log;
  }
}

async function identityOf(path: string): Promise<FileIdentity | undefined> {
  try {
    const { dev, ino, size } = await stat(path);
    return { dev, ino, size };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function sameFile(a: FileIdentity, b: FileIdentity | undefined): boolean {
  return b !== undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size;
}

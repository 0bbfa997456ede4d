import { stat } from 'node:fs/promises';
import { AuditLog } from '../telemetry/audit-log.js';
import { Batches } from './batches.js';
import { withFileLock } from './file-lock.js';

// The CA's audit log is written by more than one process: a running `ca serve` and the offline `ca issue` /
// `ca sign` share DIR/audit.log. A hash chain has one head: two writers that each remember the head they last saw
// would both chain a record to it and fork the chain. So every write happens under a lock on the log, and inside
// it the writer first makes sure it still holds the head: the file is the one it last wrote (same inode) and as
// long as it left it (same size). If another process wrote in between, the log is reopened, which reads the new
// head from the file. The lock is taken per batch, not per record: records appended while a batch is being written
// go together in the next one, and telemetry's AuditLog group-commits each batch in one durable write, so a busy
// CA pays for one lock per batch. Between batches the lock is free, so an offline command gets its turn.
//
// The lock is file-lock.ts's, on the log itself (it may live outside the CA directory). A log file that vanished
// since this process last wrote it (deleted or moved by hand) is an error, not a reason to start a fresh chain:
// every later append fails until the CA is restarted, so that nothing is issued unrecorded and nobody gets a new
// chain without asking for one.

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

  private write(records: Record<string, unknown>[]): Promise<void> {
    return withFileLock(this.path, async () => {
      try {
        const log = await this.current();
        await Promise.all(records.map((r) => log.append(r)));
        this.left = await identityOf(this.path);
      } catch (err) {
        // The in-memory head may now name a record that never reached the file: read it again next time.
        await this.log?.close().catch(() => undefined);
        this.log = undefined;
        throw err;
      }
    });
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

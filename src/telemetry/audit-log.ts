import { readFile, rename, truncate } from 'node:fs/promises';
import { AppendLog } from './append-log.js';
import { checkLine, GENESIS, sealRecord } from './audit-chain.js';

// The tamper-evident audit log: hash-chained JSON lines (audit-chain.ts), group-committed so that an append
// resolves once its record is on disk. When the file passes maxBytes it is renamed aside and a new one continues
// the same chain. Opening a file whose last line a crash cut short keeps the torn bytes in a recovery record
// instead of dropping them, so the chain stays verifiable and nothing disappears silently. Rotated files are named
// PATH.<ISO time>.<counter>, so `meshward audit verify PATH.* PATH` checks the whole history in order.

export interface AuditLogOptions {
  path: string;
  /** Rotate once the file would pass this size (default 64 MiB). */
  maxBytes?: number;
}

export class AuditLog {
  private head: string;
  private bytes: number;
  private barrier: Promise<void> | undefined;
  private rotations = 0;

  private constructor(
    private current: AppendLog,
    private readonly opts: Required<AuditLogOptions>,
    head: string,
    bytes: number,
  ) {
    this.head = head;
    this.bytes = bytes;
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const opts = { maxBytes: 64 * 1024 * 1024, ...options };
    const { head, torn, bytes } = await readTail(opts.path);
    const log = new AuditLog(await AppendLog.open(opts.path), opts, head, bytes);
    if (torn !== undefined) {
      await log.append({ type: 'recovered-torn-write', time: new Date().toISOString(), bytes: Buffer.from(torn).toString('base64') });
    }
    return log;
  }

  /** The hash of the newest record; log it somewhere else to make truncation detectable. */
  get headHash(): string {
    return this.head;
  }

  append(record: Record<string, unknown>): Promise<void> {
    const { line, hash } = sealRecord(record, this.head);
    this.head = hash;
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes > 0 && this.bytes + size > this.opts.maxBytes) {
      // Appends made before this point land in the old file (they are queued on the earlier barrier, which
      // resolves first); this one and later ones wait for the new file.
      const barrier = (this.barrier ?? Promise.resolve()).then(() => this.rotate());
      this.barrier = barrier;
      barrier.then(
        () => this.barrier === barrier && (this.barrier = undefined),
        () => this.barrier === barrier && (this.barrier = undefined),
      );
      this.bytes = 0;
    }
    this.bytes += size;
    const barrier = this.barrier;
    return barrier ? barrier.then(() => this.current.appendLine(line)) : this.current.appendLine(line);
  }

  private async rotate(): Promise<void> {
    await this.current.close();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await rename(this.opts.path, `${this.opts.path}.${stamp}.${String(++this.rotations).padStart(6, '0')}`);
    // The first record of the new file carries the last hash of the old one as its "prev": one chain across files.
    this.current = await AppendLog.open(this.opts.path);
  }

  async close(): Promise<void> {
    await this.barrier?.catch(() => undefined);
    await this.current.close();
  }
}

/** The head hash and size of an existing log; a torn last line is cut off and returned. */
async function readTail(path: string): Promise<{ head: string; torn?: string; bytes: number }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { head: GENESIS, bytes: 0 };
    throw err;
  }
  const end = text.lastIndexOf('\n');
  const complete = text.slice(0, end + 1);
  const torn = text.slice(end + 1);
  if (torn !== '') await truncate(path, Buffer.byteLength(complete));
  const lines = complete.split('\n');
  lines.pop();
  const last = lines[lines.length - 1];
  if (last === undefined) return { head: GENESIS, bytes: 0, ...(torn ? { torn } : {}) };
  const check = checkLine(last);
  if (!check.ok) throw new Error(`${path}: the last record is damaged (${check.reason}); run \`meshward audit verify ${path}\``);
  return { head: check.hash, bytes: Buffer.byteLength(complete), ...(torn ? { torn } : {}) };
}


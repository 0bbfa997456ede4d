import { open, readdir, rename, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog, type AppendLogOptions } from './append-log.js';
import { checkLine, GENESIS, sealRecord } from './audit-chain.js';
import { redactValue } from './redact.js';

// The tamper-evident audit log: hash-chained JSON lines (audit-chain.ts), group-committed so that an append
// resolves once its record is on disk. When the file passes maxBytes it is renamed aside and a new one continues
// the same chain. Opening a file whose last line a crash cut short keeps the torn bytes in a recovery record
// instead of dropping them, so the chain stays verifiable and nothing disappears silently. Rotated files are named
// PATH.<ISO time>.<counter>, so `meshward audit verify PATH.* PATH` checks the whole history in order. With
// keepFiles, the oldest rotated files beyond that many are deleted: a busy sidecar writes gigabytes an hour, and
// a full disk stops the workload. What remains still verifies (the oldest file's first "prev" is its anchor).

export interface AuditRotation {
  /** Where the full file went. */
  rotatedTo: string;
  /** The hash of its last record: the anchor a verifier of later files starts from. */
  head: string;
  /** Rotated files deleted to stay within keepFiles, oldest first. */
  pruned: string[];
}

export interface AuditLogOptions {
  path: string;
  /** Rotate once the file would pass this size (default 64 MiB). */
  maxBytes?: number;
  /** Keep at most this many rotated files beside the live one; undefined keeps them all. */
  keepFiles?: number;
  /** Hears of each rotation, once the new file is open (for a log line: the head hash kept elsewhere). */
  onRotate?: (rotation: AuditRotation) => void;
  /** How long a record may wait for others to share its write (append-log.ts); default 0. */
  commitDelayMs?: number;
  /** Write without waiting for the disk, fdatasync at most this often (append-log.ts); default: every write waits. */
  syncIntervalMs?: number;
  /** Hears of a failed write of records appended with `enqueue`. */
  onWriteError?: (err: Error, records: number) => void;
}

/**
 * How audit records written after the answer they describe (the sidecar's, the authz server's) reach the disk: in
 * the kernel within about 5 ms of the answer (one write per 5 ms), so that a crash of the process loses none of
 * them, and on disk within 100 ms (one fdatasync per 100 ms), against a power loss. The CA, whose records must be
 * on disk before it answers, waits for the disk on every write.
 */
export const AFTER_ANSWER_WRITES = { commitDelayMs: 5, syncIntervalMs: 100 } as const;

export class AuditLog {
  private head: string;
  private bytes: number;
  private barrier: Promise<void> | undefined;
  private rotations = 0;

  private constructor(
    private current: AppendLog,
    private readonly opts: AuditLogOptions & { maxBytes: number },
    head: string,
    bytes: number,
  ) {
    this.head = head;
    this.bytes = bytes;
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const opts = { maxBytes: 64 * 1024 * 1024, ...options };
    const { head, torn, bytes } = await readTail(opts.path);
    const log = new AuditLog(await AppendLog.open(opts.path, appendLogOptions(opts)), opts, head, bytes);
    if (torn !== undefined) {
      await log.append({ type: 'recovered-torn-write', time: new Date().toISOString(), bytes: Buffer.from(torn).toString('base64') });
    }
    return log;
  }

  /** The hash of the newest record; log it somewhere else to make truncation detectable. */
  get headHash(): string {
    return this.head;
  }

  /** Resolves once the record is on disk. */
  append(record: Record<string, unknown>): Promise<void> {
    const { line, barrier } = this.seal(record);
    return barrier ? barrier.then(() => this.current.appendLine(line)) : this.current.appendLine(line);
  }

  /** Appends a record nobody waits for (no promise per record); a failed write goes to onWriteError. */
  enqueue(record: Record<string, unknown>): void {
    const { line, barrier } = this.seal(record);
    if (barrier) void barrier.then(() => this.current.enqueueLine(line), (err: Error) => this.opts.onWriteError?.(err, 1));
    else this.current.enqueueLine(line);
  }

  /**
   * Chains the record to the head; a rotation due first is set up as the barrier the write must wait for. Every
   * string in it is redacted first (a JWT, a credential parameter), whoever built it and from whatever a caller
   * sent: a host, a SPIFFE ID asked for, a refusal's message.
   */
  private seal(record: Record<string, unknown>): { line: string; barrier: Promise<void> | undefined } {
    const previous = this.head;
    const { line, hash } = sealRecord(redactValue(record) as Record<string, unknown>, previous);
    this.head = hash;
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes > 0 && this.bytes + size > this.opts.maxBytes) {
      // Appends made before this point land in the old file (they are queued on the earlier barrier, which
      // resolves first); this one and later ones wait for the new file.
      const barrier = (this.barrier ?? Promise.resolve()).then(() => this.rotate(previous));
      this.barrier = barrier;
      barrier.then(
        () => this.barrier === barrier && (this.barrier = undefined),
        () => this.barrier === barrier && (this.barrier = undefined),
      );
      this.bytes = 0;
    }
    this.bytes += size;
    return { line, barrier: this.barrier };
  }

  /** `head`: the hash of the full file's last record. */
  private async rotate(head: string): Promise<void> {
    await this.current.close();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const rotatedTo = `${this.opts.path}.${stamp}.${String(++this.rotations).padStart(6, '0')}`;
    await rename(this.opts.path, rotatedTo);
    // The first record of the new file carries the last hash of the old one as its "prev": one chain across files.
    this.current = await AppendLog.open(this.opts.path, appendLogOptions(this.opts));
    const pruned = this.opts.keepFiles === undefined ? [] : await pruneRotated(this.opts.path, this.opts.keepFiles);
    this.opts.onRotate?.({ rotatedTo, head, pruned });
  }

  async close(): Promise<void> {
    await this.barrier?.catch(() => undefined);
    await this.current.close();
  }
}

function appendLogOptions(opts: AuditLogOptions): AppendLogOptions {
  return {
    ...(opts.commitDelayMs !== undefined ? { commitDelayMs: opts.commitDelayMs } : {}),
    ...(opts.syncIntervalMs !== undefined ? { syncIntervalMs: opts.syncIntervalMs } : {}),
    ...(opts.onWriteError ? { onError: opts.onWriteError } : {}),
  };
}

/** The log line for a rotation: the closed file's head hash, kept outside it, is what shows a later truncation. */
export function logAuditRotation(logger: Logger): (rotation: AuditRotation) => void {
  return ({ rotatedTo, head, pruned }) => logger.info({ rotatedTo, head, ...(pruned.length ? { pruned } : {}) }, 'audit log rotated');
}

/**
 * Deletes the oldest rotated files of `path` beyond `keep`. Their names sort by time (PATH.<ISO time>.<n>), across
 * restarts too. A file that cannot be deleted is left for the next rotation: pruning never fails an append.
 */
const ROTATED_SUFFIX = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z\.\d{6,}$/;

async function pruneRotated(path: string, keep: number): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const rotated = (await readdir(dir).catch(() => [] as string[]))
    .filter((name) => name.startsWith(prefix) && ROTATED_SUFFIX.test(name.slice(prefix.length)))
    .sort();
  const pruned: string[] = [];
  for (const name of rotated.slice(0, Math.max(0, rotated.length - keep))) {
    const file = join(dir, name);
    if (await unlink(file).then(() => true, () => false)) pruned.push(file);
  }
  return pruned;
}

/** How much of the file's end readTail reads at a time: a few records. */
const TAIL_CHUNK = 64 * 1024;

/**
 * The head hash and size of an existing log; a torn last line is cut off and returned. Only the end of the file is
 * read, back to the start of its last complete line: a log is up to maxBytes (64 MiB by default), and reading it
 * whole at every start held it in memory twice over (bench/README.md: opening a 47 MB log took 362 ms and 102 MB).
 */
async function readTail(path: string): Promise<{ head: string; torn?: string; bytes: number }> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { head: GENESIS, bytes: 0 };
    throw err;
  }
  let lastLine: string | undefined;
  let tornBytes: Buffer;
  let size: number;
  try {
    size = (await file.stat()).size;
    let tail = Buffer.alloc(0);
    let from = size;
    // Read back until the tail holds the newline that ends the last complete line and the one before it (or the
    // file's start).
    for (;;) {
      const end = tail.lastIndexOf(0x0a);
      // (Not lastIndexOf(…, -1) when the newline is the tail's first byte: a negative offset counts from the end.)
      const start = end <= 0 ? -1 : tail.lastIndexOf(0x0a, end - 1);
      if (from === 0 || start >= 0) {
        tornBytes = tail.subarray(end + 1);
        if (end >= 0) lastLine = tail.subarray(start + 1, end).toString('utf8');
        break;
      }
      const length = Math.min(TAIL_CHUNK, from);
      from -= length;
      const chunk = Buffer.alloc(length);
      await file.read(chunk, 0, length, from);
      tail = Buffer.concat([chunk, tail]);
    }
  } finally {
    await file.close();
  }
  const bytes = size - tornBytes.length;
  const torn = tornBytes.length > 0 ? tornBytes.toString('utf8') : undefined;
  if (torn !== undefined) await truncate(path, bytes);
  if (lastLine === undefined) return { head: GENESIS, bytes: 0, ...(torn !== undefined ? { torn } : {}) };
  const check = checkLine(lastLine);
  if (!check.ok) throw new Error(`${path}: the last record is damaged (${check.reason}); run \`meshward audit verify ${path}\``);
  return { head: check.hash, bytes, ...(torn !== undefined ? { torn } : {}) };
}

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { parseRecords } from '../telemetry/append-log.js';
import { Batches } from './batches.js';

// The record of used join tokens (DIR/used-tokens.jsonl, a JSON line per use), shared by every process that uses the
// CA directory: two `ca serve` on one directory must not both redeem a token, and no restart may forget a use. So
// a use counts only once it is appended under the directory's lock, and inside the lock the process first reads
// what the others appended since it last looked; a token someone else used first is refused. Uses that arrive
// while a batch is being written go together in the next one (one lock and one durable write per batch).
//
// The file is only ever appended to, except by `open`, which drops the records of long-expired tokens (they can
// never verify again) by writing a new file and renaming it over the old, under the lock. Nobody holds the file
// open between turns and every turn reads from where this process left off only if the file still continues
// what it read (the same file, its last line where it was), so a compacted file is simply read again in full.
// A record a concurrent appender wrote cannot be lost: appending and compacting both happen under the lock.

/** How long after its expiry a record is kept: a host sharing the directory whose clock is behind may still take the token as valid. */
const KEEP_AFTER_EXPIRY_S = 300;

export interface TokenUse {
  jti: string;
  /** Expiry, in seconds since the epoch (the JWT's exp). */
  exp: number;
}

/** Runs `fn` holding the CA directory's lock. */
export type Locked = <T>(fn: () => Promise<T>) => Promise<T>;

interface Pending extends TokenUse {
  /** Set when another process had recorded the token first. */
  taken?: boolean;
}

/** How far this process has read the file. */
interface ReadMark {
  dev: number;
  ino: number;
  /** Bytes read: always the end of a complete line. */
  size: number;
  /** The last line read, with its newline: if it still ends the part read, the file continues what was read. */
  lastLine: Buffer;
  lines: number;
}

export class UsedTokens {
  /** Uses recorded on disk, by any process, as far as this one has read; jti → exp. */
  private readonly used = new Map<string, number>();
  /** Uses of this process not yet recorded, and uses whose recording failed: refused, to fail closed. */
  private readonly reserved = new Set<string>();
  private mark: ReadMark | undefined;
  private readonly batches = new Batches<Pending>((uses) => this.locked(() => this.record(uses)));

  private constructor(
    readonly file: string,
    private readonly locked: Locked,
  ) {}

  /** Reads the record (creating it if need be) and compacts it, under the lock. */
  static async open(file: string, locked: Locked, now = Date.now()): Promise<UsedTokens> {
    const tokens = new UsedTokens(file, locked);
    await locked(async () => {
      await tokens.withFile((handle) => tokens.catchUp(handle));
      const keep = [...tokens.used].filter(([, exp]) => (exp + KEEP_AFTER_EXPIRY_S) * 1000 > now);
      if (keep.length === tokens.used.size) return;
      await writeFileAtomic(file, keep.map(([jti, exp]) => `${JSON.stringify({ jti, exp })}\n`).join(''), { mode: 0o600 });
      tokens.used.clear();
      tokens.mark = undefined;
      await tokens.withFile((handle) => tokens.catchUp(handle));
    });
    return tokens;
  }

  /** Whether the token is known to be used (by any process, as far as this one has read) or being used here. */
  has(jti: string): boolean {
    return this.used.has(jti) || this.reserved.has(jti);
  }

  /**
   * Uses a token up: reserved at once, so that a concurrent use in this process is refused, then recorded durably.
   * Resolves false if it was used before, here or by another process. If recording fails the token stays
   * reserved: fail closed.
   */
  async use(use: TokenUse): Promise<boolean> {
    if (this.has(use.jti)) return false;
    this.reserved.add(use.jti);
    const pending: Pending = { ...use };
    await this.batches.add(pending);
    this.reserved.delete(use.jti);
    return !pending.taken;
  }

  async close(): Promise<void> {
    await this.batches.settled();
  }

  private record(uses: Pending[]): Promise<void> {
    return this.withFile(async (handle) => {
      await this.catchUp(handle);
      const fresh = uses.filter((u) => !(u.taken = this.used.has(u.jti)));
      if (fresh.length === 0) return;
      const usedAt = new Date().toISOString();
      const lines = fresh.map((u) => Buffer.from(`${JSON.stringify({ jti: u.jti, exp: u.exp, usedAt })}\n`));
      const bytes = Buffer.concat(lines);
      await handle.write(bytes);
      for (const u of fresh) this.used.set(u.jti, u.exp);
      this.mark = { ...this.mark!, size: this.mark!.size + bytes.length, lastLine: lines[lines.length - 1]!, lines: this.mark!.lines + lines.length };
    });
  }

  /** Opens the file for one turn (appends are durable on return); a record that vanished since it was read is an error. */
  private async withFile<T>(fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    const flags = constants.O_RDWR | constants.O_APPEND | constants.O_DSYNC;
    let handle: FileHandle;
    try {
      handle = await open(this.file, this.mark === undefined ? flags | constants.O_CREAT : flags, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || this.mark === undefined) throw err;
      throw new Error(`${this.file} (the record of used join tokens) disappeared; restore it, or restart the CA`);
    }
    try {
      return await fn(handle);
    } finally {
      await handle.close();
    }
  }

  /** Reads what was appended since this process last read; all of it if the file is not the one it read. */
  private async catchUp(handle: FileHandle): Promise<void> {
    const { dev, ino, size } = await handle.stat();
    let mark = this.mark;
    if (mark !== undefined) {
      const continues =
        mark.dev === dev && mark.ino === ino && size >= mark.size && (await readRange(handle, mark.size - mark.lastLine.length, mark.size)).equals(mark.lastLine);
      if (!continues) mark = undefined;
    }
    const from = mark?.size ?? 0;
    const bytes = await readRange(handle, from, size);
    const complete = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1);
    const { records } = parseRecords<TokenUse>(complete.toString('utf8'), this.file, (mark?.lines ?? 0) + 1);
    for (const r of records) this.used.set(r.jti, r.exp);
    // Under the lock nobody is writing: a last line without its newline is a write a crash cut short, never
    // acknowledged. It is cut off, so that the next record starts on a line of its own.
    if (complete.length < bytes.length) await handle.truncate(from + complete.length);
    const lastLine = complete.length === 0 ? (mark?.lastLine ?? Buffer.alloc(0)) : Buffer.from(complete.subarray(complete.lastIndexOf(0x0a, complete.length - 2) + 1));
    this.mark = { dev, ino, size: from + complete.length, lastLine, lines: (mark?.lines ?? 0) + records.length };
  }
}

async function readRange(handle: FileHandle, from: number, to: number): Promise<Buffer> {
  const buffer = Buffer.alloc(to - from);
  for (let read = 0; read < buffer.length; ) {
    const { bytesRead } = await handle.read(buffer, read, buffer.length - read, from + read);
    if (bytesRead === 0) return buffer.subarray(0, read);
    read += bytesRead;
  }
  return buffer;
}

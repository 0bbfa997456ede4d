import { hash as oneShotHash } from 'node:crypto';

// The hash chain behind the audit log. Pure. Each record is one JSON line whose last member is
//   "hash": sha256 of the line up to that member (with the object closed), hex
// and which carries "prev": the previous record's hash. Hashing the exact bytes written (not a re-serialisation)
// means any edit to a record breaks its own hash; deleting, inserting or reordering records breaks a "prev" link.
// Truncating the newest records cannot be seen from the file alone: compare the head hash with one kept
// elsewhere (the sidecar logs it at shutdown and on rotation).

export const GENESIS = '0'.repeat(64);
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

export function sealRecord(record: Record<string, unknown>, prev: string): { line: string; hash: string } {
  // The record's own JSON with "prev" appended: the same bytes as stringifying a copy with prev, without the copy.
  const own = JSON.stringify(record);
  const body = own === '{}' ? `{"prev":${JSON.stringify(prev)}}` : `${own.slice(0, -1)},"prev":${JSON.stringify(prev)}}`;
  const hash = oneShotHash('sha256', body, 'hex');
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

export type LineCheck = { ok: true; hash: string; prev: string; record: Record<string, unknown> } | { ok: false; reason: string };

/** Checks one line on its own: well-formed and its hash matches its bytes. */
export function checkLine(line: string): LineCheck {
  const m = HASH_SUFFIX.exec(line);
  if (!m) return { ok: false, reason: 'it has no trailing "hash" member' };
  const body = `${line.slice(0, m.index)}}`;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'it is not valid JSON' };
  }
  if (typeof record.prev !== 'string') return { ok: false, reason: 'it has no "prev" member' };
  const hash = oneShotHash('sha256', body, 'hex');
  if (hash !== m[1]) return { ok: false, reason: 'its hash does not match its content (the record was edited)' };
  return { ok: true, hash, prev: record.prev, record };
}

export interface ChainProblem {
  file: string;
  line: number;
  reason: string;
}

export interface ChainReport {
  records: number;
  /** The hash of the last intact record: compare it with a copy kept elsewhere to detect truncation. */
  head: string;
  problem?: ChainProblem;
}

/**
 * Verifies files in order (oldest first), following the chain across them. The very first record's "prev" is
 * accepted as the anchor when it is not the genesis value, so a set of rotated files can be checked from any
 * point; every later link must hold.
 */
export function verifyChain(files: { name: string; text: string }[]): ChainReport {
  let expectedPrev: string | undefined;
  let records = 0;
  let head = GENESIS;
  for (const { name, text } of files) {
    if (text === '') continue;
    const lines = text.split('\n');
    const torn = lines.pop();
    for (let i = 0; i < lines.length; i++) {
      const where = { file: name, line: i + 1 };
      const check = checkLine(lines[i]!);
      if (!check.ok) return { records, head, problem: { ...where, reason: check.reason } };
      if (expectedPrev !== undefined && check.prev !== expectedPrev) {
        return { records, head, problem: { ...where, reason: 'its "prev" does not match the record before it (a record was deleted, inserted or moved)' } };
      }
      expectedPrev = check.hash;
      head = check.hash;
      records++;
    }
    if (torn !== '') {
      return { records, head, problem: { file: name, line: lines.length + 1, reason: 'the last line is incomplete (a write cut short by a crash)' } };
    }
  }
  return { records, head };
}

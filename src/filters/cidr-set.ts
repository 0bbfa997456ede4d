import { parseIpBlock, type IpAddress, type IpBlock } from '../authz/index.js';

// A set of CIDR blocks that answers "is this address in it" in O(log n): threat feeds list tens of thousands of
// blocks, and a linear scan of them would cost more than the rest of a request. The blocks become sorted, merged
// ranges searched by bisection; IPv4 as numbers, IPv6 as bigints. Addresses are parsed as the policy engine parses
// them (an IPv4-mapped IPv6 address is its IPv4 address).

class RangeList<T extends number | bigint> {
  constructor(
    private readonly starts: readonly T[],
    private readonly ends: readonly T[],
  ) {}

  /** `one` is 1 in T: ranges that touch merge too. */
  static of<T extends number | bigint>(ranges: Array<[T, T]>, one: T): RangeList<T> {
    ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const starts: T[] = [];
    const ends: T[] = [];
    for (const [start, end] of ranges) {
      const last = ends.length - 1;
      if (last >= 0 && start <= ((ends[last]! as number) + (one as number))) {
        if (end > ends[last]!) ends[last] = end;
      } else {
        starts.push(start);
        ends.push(end);
      }
    }
    return new RangeList(starts, ends);
  }

  has(value: T): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! > value) hi = mid - 1;
      else if (this.ends[mid]! < value) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

function v6Value(words: readonly number[]): bigint {
  return words.reduce((acc, w) => (acc << 32n) | BigInt(w), 0n);
}

export class CidrSet {
  private constructor(
    private readonly v4: RangeList<number>,
    private readonly v6: RangeList<bigint>,
    /** How many blocks were given (before merging). */
    readonly size: number,
  ) {}

  static of(blocks: readonly IpBlock[]): CidrSet {
    const v4: Array<[number, number]> = [];
    const v6: Array<[bigint, bigint]> = [];
    for (const block of blocks) {
      if (block.v6) {
        const start = v6Value(block.words);
        v6.push([start, start | (~v6Value(block.masks) & ((1n << 128n) - 1n))]);
      } else {
        v4.push([block.words[0]!, (block.words[0]! | ~block.masks[0]!) >>> 0]);
      }
    }
    return new CidrSet(RangeList.of(v4, 1), RangeList.of(v6, 1n), blocks.length);
  }

  has(address: IpAddress): boolean {
    return address.v6 ? this.v6.has(v6Value(address.words)) : this.v4.has(address.words[0]!);
  }
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address; throws an Error naming it and the reason. */
export function cidrBlock(text: string): IpBlock {
  const parsed = parseIpBlock(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

/**
 * A list in the format threat feeds use (Spamhaus DROP, FireHOL, abuse.ch): one block or bare address per line,
 * comments after `#` or `;`, blank lines. Throws an Error naming the first bad line.
 */
export function parseCidrList(text: string): CidrSet {
  const blocks: IpBlock[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const comment = line.search(/[#;]/);
    const entry = (comment === -1 ? line : line.slice(0, comment)).trim();
    if (entry === '') continue;
    const parsed = parseIpBlock(entry);
    if (!parsed.ok) throw new Error(`line ${i + 1}: ${parsed.error}`);
    blocks.push(parsed.value);
  }
  return CidrSet.of(blocks);
}

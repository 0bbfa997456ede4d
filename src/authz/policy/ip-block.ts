import { isIP } from 'node:net';
import type { PatternResult } from './pattern-result.js';

// CIDR blocks. node:net's BlockList does this job but costs about 3 µs per check (it builds a SocketAddress each
// call), which is more than the whole rest of a decision; so addresses are parsed once per request into 32-bit words
// and compared with masks. IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are compared as the IPv4 address they carry,
// so a v4 block cannot be walked around by a dual-stack listener.

/** An address as 32-bit words: one word for IPv4, four for IPv6. */
export type IpAddress = { readonly v6: boolean; readonly words: readonly number[] };

export interface IpBlock {
  readonly source: string;
  readonly v6: boolean;
  readonly words: readonly number[];
  readonly masks: readonly number[];
}

function parseIpv4Word(text: string): number {
  const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function parseIpv6Words(text: string): number[] {
  const hextets: number[] = [];
  let tail = text;
  let v4Tail: number | undefined;
  if (text.includes('.')) {
    const at = text.lastIndexOf(':');
    v4Tail = parseIpv4Word(text.slice(at + 1));
    tail = `${text.slice(0, at)}:0:0`;
  }
  const [head, rest] = tail.includes('::') ? tail.split('::') : [tail, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - left.length - right.length;
  for (const h of left) hextets.push(parseInt(h, 16));
  for (let i = 0; i < fill; i++) hextets.push(0);
  for (const h of right) hextets.push(parseInt(h, 16));
  const words = [0, 1, 2, 3].map((i) => ((hextets[2 * i]! << 16) | hextets[2 * i + 1]!) >>> 0);
  if (v4Tail !== undefined) words[3] = v4Tail;
  return words;
}

/** Parses an IPv4 or IPv6 address (no port, no zone); undefined if it is not one. */
export function parseIpAddress(text: string | undefined): IpAddress | undefined {
  if (typeof text !== 'string') return undefined;
  const family = isIP(text);
  if (family === 4) return { v6: false, words: [parseIpv4Word(text)] };
  if (family !== 6 || text.includes('%')) return undefined;
  const words = parseIpv6Words(text);
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return { v6: false, words: [words[3]!] };
  return { v6: true, words };
}

function maskWords(prefix: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => {
    const bits = Math.max(0, Math.min(32, prefix - 32 * i));
    return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  });
}

/** Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a single-address block). */
export function parseIpBlock(source: string): PatternResult<IpBlock> {
  const fail = (why: string): PatternResult<IpBlock> => ({ ok: false, error: `"${source}" is not a CIDR block: ${why}` });
  const slash = source.indexOf('/');
  const address = parseIpAddress(slash === -1 ? source : source.slice(0, slash));
  if (!address) return fail('the address is not an IPv4 or IPv6 address');
  const max = address.v6 ? 128 : 32;
  const prefixText = slash === -1 ? String(max) : source.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return fail(`the prefix length must be 0-${max}`);
  const masks = maskWords(Number(prefixText), address.words.length);
  const words = address.words.map((w, i) => (w & masks[i]!) >>> 0);
  if (words.some((w, i) => w !== address.words[i])) {
    return fail('the address has bits set beyond the prefix length; use the network address');
  }
  return { ok: true, value: { source, v6: address.v6, words, masks } };
}

export function ipBlockContains(block: IpBlock, address: IpAddress): boolean {
  if (block.v6 !== address.v6) return false;
  for (let i = 0; i < block.words.length; i++) {
    if (((address.words[i]! & block.masks[i]!) >>> 0) !== block.words[i]) return false;
  }
  return true;
}

export function mustParseIpBlocks(sources: readonly string[]): IpBlock[] {
  return sources.map((source) => {
    const parsed = parseIpBlock(source);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

/** A compiled list of blocks; `sources` as written, for explanations. */
export class IpBlockMatcher {
  private readonly blocks: readonly IpBlock[];

  constructor(readonly sources: readonly string[]) {
    this.blocks = mustParseIpBlocks(sources);
  }

  contains(address: IpAddress | undefined): boolean {
    if (address === undefined) return false;
    for (let i = 0; i < this.blocks.length; i++) if (ipBlockContains(this.blocks[i]!, address)) return true;
    return false;
  }
}

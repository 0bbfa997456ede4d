import { readFileSync } from 'node:fs';

// A seeded, replayable source of hostile input for the fuzz tests. mulberry32: tiny, fast, and good enough to
// spread inputs; the point is that one number (the seed) reproduces a whole run.

/** The seed of this run: MESHWARD_FUZZ_SEED when set (to replay a failure), else a fixed default. */
export function fuzzSeed(): number {
  const raw = process.env.MESHWARD_FUZZ_SEED;
  if (raw === undefined || raw === '') return 0x5eed;
  const seed = Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`MESHWARD_FUZZ_SEED must be an integer, got "${raw}"`);
  return seed >>> 0;
}

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string(length: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[this.int(0, alphabet.length - 1)];
    return out;
  }

  /** A fresh generator for one input: inputs stay reproducible whatever order concurrent workers take them in. */
  fork(): Rng {
    return new Rng(this.int(0, 0xffffffff));
  }
}

const TOKEN = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~';
const NASTY = ['%2e%2e', '%2F', '%2f', '%5c', '%00', '%25', '%u002e', '%c0%af', '%ff', '..', '.', '\\', '//', ';', '?', '#', '%', '\u00e9', '\u2215', '\ud83d\ude00', '\u202e', '\0', ' ', '\t', '@', ':', '*'];

/** A path to mutate: mostly under the allowed prefix (so some reach the app), sometimes anything. */
export function randomPath(rng: Rng): string {
  const base = rng.pick(['/api/orders', '/api/orders/1', '/', '/admin', '', '*', 'http://orders/api/orders', '//api//orders', '/public']);
  const segments: string[] = [];
  for (let i = rng.int(0, 6); i > 0; i--) {
    const kind = rng.int(0, 5);
    if (kind === 0) segments.push(rng.string(rng.int(1, 12), TOKEN));
    else if (kind === 1) segments.push(rng.pick(NASTY));
    else if (kind === 2) segments.push(rng.string(rng.int(200, 4000), TOKEN));
    else if (kind === 3) segments.push(Array.from({ length: rng.int(1, 4) }, () => rng.pick(NASTY)).join(''));
    else if (kind === 4) segments.push(`%${rng.string(2, '0123456789abcdefABCDEFxyz')}`);
    else segments.push(String.fromCharCode(rng.int(1, 0xffff)));
  }
  let path = base + (segments.length > 0 ? `/${segments.join(rng.pick(['/', '/', '\\', '%2f', '']))}` : '');
  if (rng.chance(0.3)) path += `?${rng.string(rng.int(0, 30), `${TOKEN}=&%+`)}`;
  return path;
}

const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PRI', 'get', 'G ET', 'GET\0', '', 'M-SEARCH', 'PROPFIND'];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1.', 'HTTP/9.9', ''];
const HEADER_NAMES = [
  'content-length',
  'transfer-encoding',
  'x-forwarded-client-cert',
  'x-meshward-principal',
  'x-request-id',
  'authorization',
  'connection',
  'upgrade',
  'expect',
  'host',
  'te',
  'cookie',
  'x-forwarded-for',
  'forwarded',
  'trailer',
  'proxy-connection',
  'keep-alive',
  'http2-settings',
];

function randomHeaderName(rng: Rng): string {
  const kind = rng.int(0, 4);
  if (kind <= 1) return rng.pick(HEADER_NAMES);
  if (kind === 2) return rng.string(rng.int(1, 20), TOKEN);
  if (kind === 3) return rng.string(rng.int(1, 10), `${TOKEN} :\t\r\n\0()<>@,;"/[]?={}\u00ff`);
  return '';
}

function randomHeaderValue(rng: Rng, maxBig: number): string {
  const kind = rng.int(0, 6);
  if (kind === 0) return rng.string(rng.int(0, 40), `${TOKEN} ,;=`);
  if (kind === 1) return rng.string(rng.int(1, maxBig), TOKEN);
  if (kind === 2) return `${rng.string(rng.int(0, 8), TOKEN)}\r\n${rng.string(rng.int(1, 8), TOKEN)}: injected`;
  if (kind === 3) return rng.string(rng.int(1, 20), '\0\x01\x7f\u00ff\u0100\t\r\n \ud83d');
  if (kind === 4) return String(rng.pick([0, -1, 1, 5, 10737418240, '0x10', '1e3', ' 5', '5, 5', '18446744073709551616']));
  if (kind === 5) return rng.pick(['chunked', 'chunked, identity', 'gzip, chunked', ' chunked', 'CHUNKED', 'close', 'keep-alive', 'Upgrade', 'h2c', 'websocket', '100-continue']);
  return `By=spiffe://evil/x;Hash=00;URI=spiffe://${rng.string(8, TOKEN)}/ns/default/sa/web`;
}

export interface HttpInput {
  bytes: Buffer;
  /** A well-formed request whose answer ends at a known place: the connection may carry another after it. */
  reusable: boolean;
  /** Connect with ALPN h2 (the bytes are an HTTP/2 preface and frames). */
  h2?: boolean;
}

/** A well-formed request (the shape every mutation starts from). */
function wellFormed(rng: Rng, host: string): { lines: string[]; body: Buffer } {
  const method = rng.pick(['GET', 'GET', 'POST']);
  const body = method === 'POST' ? Buffer.from(rng.string(rng.int(0, 200), TOKEN)) : Buffer.alloc(0);
  const lines = [`${method} ${rng.chance(0.5) ? '/api/orders' : '/api/orders/1'}?fuzz=${rng.int(0, 1e6)} HTTP/1.1`, `Host: ${host}`];
  if (method === 'POST') lines.push(`Content-Length: ${body.length}`);
  return { lines, body };
}

const h2Frame = (rng: Rng): Buffer => {
  const payload = rng.bytes(rng.int(0, 64));
  const head = Buffer.alloc(9);
  head.writeUIntBE(rng.chance(0.9) ? payload.length : rng.int(0, 0xffffff), 0, 3);
  head[3] = rng.int(0, 10);
  head[4] = rng.int(0, 255);
  head.writeUInt32BE(rng.int(0, 7), 5);
  return Buffer.concat([head, payload]);
};

/** One hostile HTTP/1.1 (or HTTP/2 preface) input for a listener that routes by `host`; `maxBig` bounds a huge header. */
export function randomHttpInput(rng: Rng, host: string, maxBig: number): HttpInput {
  const kind = rng.int(0, 99);
  if (kind < 15) {
    // Well-formed, to keep connections alive between mutations.
    const { lines, body } = wellFormed(rng, host);
    return { bytes: Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]), reusable: true };
  }
  if (kind < 40) {
    // A mutated request line: one part of an allowed one (so that it reaches the proxy past the policy), or all of it.
    const part = rng.int(0, 3);
    const method = part === 0 || part === 3 ? (rng.chance(0.7) ? rng.pick(METHODS) : rng.string(rng.int(1, 12), `${TOKEN}\0 \t`)) : 'GET';
    const path = part === 1 || part === 3 ? randomPath(rng) : '/api/orders/1';
    const version = part === 2 || part === 3 ? rng.pick(VERSIONS) : 'HTTP/1.1';
    const line = `${method}${part === 3 ? rng.pick([' ', ' ', '  ', '\t', '']) : ' '}${path} ${version}`;
    return { bytes: Buffer.from(`${line}\r\nHost: ${host}\r\nContent-Length: 0\r\n\r\n`, 'utf8'), reusable: false };
  }
  if (kind < 65) {
    // Random headers on a good request line.
    const { lines, body } = wellFormed(rng, host);
    for (let i = rng.int(1, 6); i > 0; i--) lines.push(`${randomHeaderName(rng)}${rng.pick([': ', ':', ' : ', ':\t'])}${randomHeaderValue(rng, maxBig)}`);
    if (rng.chance(0.2)) lines.push(`Content-Length: ${rng.int(0, 10)}`, `Content-Length: ${rng.int(0, 10)}`);
    if (rng.chance(0.1)) lines.push(`Host: ${rng.string(rng.int(0, 10), TOKEN)}`);
    const sep = rng.pick(['\r\n', '\r\n', '\n', '\r']);
    return { bytes: Buffer.concat([Buffer.from(`${lines.join(sep)}${sep}${sep}`, rng.chance(0.5) ? 'utf8' : 'latin1'), body]), reusable: false };
  }
  if (kind < 75) {
    // Truncated anywhere, or a declared body that never fully comes.
    const { lines } = wellFormed(rng, host);
    const whole = Buffer.from(`${lines.join('\r\n')}\r\nContent-Length: ${rng.int(1, 5000)}\r\n\r\n${rng.string(rng.int(0, 50), TOKEN)}`);
    return { bytes: whole.subarray(0, rng.int(0, whole.length)), reusable: false };
  }
  if (kind < 82) {
    // Chunked bodies with broken framing.
    const { lines } = wellFormed(rng, host);
    lines[0] = lines[0]!.replace(/^GET/, 'POST');
    lines.push('Transfer-Encoding: chunked');
    const chunks = Array.from({ length: rng.int(0, 4) }, () => `${rng.pick([rng.int(0, 40).toString(16), 'zz', '-1', 'ffffffffffffffff', '5;ext=1', ''])}\r\n${rng.string(rng.int(0, 40), TOKEN)}\r\n`);
    return { bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n${chunks.join('')}${rng.chance(0.5) ? '0\r\n\r\n' : ''}`), reusable: false };
  }
  if (kind < 90) return { bytes: rng.bytes(rng.int(1, 2048)), reusable: false };
  // An HTTP/2 preface, then garbage or random frames; over TLS half of these negotiate h2 by ALPN.
  const frames = rng.chance(0.5) ? [rng.bytes(rng.int(0, 512))] : Array.from({ length: rng.int(1, 8) }, () => h2Frame(rng));
  return { bytes: Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), ...frames]), reusable: false, h2: rng.chance(0.5) };
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** What in a child's output means an error escaped its handlers. */
export const ESCAPED_ERROR = /Unhandled|uncaught|TypeError|RangeError/;

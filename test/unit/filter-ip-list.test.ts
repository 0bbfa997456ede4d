import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseIpAddress } from '../../src/authz/index.js';
import { plainIssueMessage } from '../../src/config/issue-message.js';
import { cidrBlock, CidrSet, parseCidrList } from '../../src/filters/cidr-set.js';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { clientAddress, ipList, ipRefusal } from '../../src/filters/ip-list.js';
import type { LocalReply } from '../../src/filters/local-reply.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

const ip = (text: string) => parseIpAddress(text)!;
const set = (...blocks: string[]) => CidrSet.of(blocks.map(cidrBlock));

describe('CIDR sets', () => {
  it('holds IPv4 and IPv6 blocks and bare addresses, edges included', () => {
    const s = set('10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1');
    for (const a of ['10.0.0.0', '10.255.255.255', '192.0.2.7', '2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '::1']) expect(s.has(ip(a)), a).toBe(true);
    for (const a of ['9.255.255.255', '11.0.0.0', '192.0.2.6', '192.0.2.8', '2001:db9::', '::2', '::']) expect(s.has(ip(a)), a).toBe(false);
  });

  it('takes an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    expect(set('10.0.0.0/8').has(ip('::ffff:10.1.2.3'))).toBe(true);
  });

  it('merges overlapping and adjacent blocks without losing an address', () => {
    const s = set('10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25', '0.0.0.0/1', '172.16.0.0/12');
    for (const a of ['10.0.0.255', '10.0.1.0', '10.0.1.255', '127.255.255.255', '172.31.0.1']) expect(s.has(ip(a)), a).toBe(true);
    for (const a of ['128.0.0.0', '172.32.0.0']) expect(s.has(ip(a)), a).toBe(false);
    expect(set('0.0.0.0/0').has(ip('255.255.255.255'))).toBe(true);
    expect(set('::/0').has(ip('ffff::1'))).toBe(true);
    expect(set().has(ip('10.0.0.1'))).toBe(false);
  });

  it('reads the threat-feed format: comments after # or ;, blank lines, bare addresses, CRLF', () => {
    const s = parseCidrList('# Spamhaus DROP style\r\n\r\n1.10.16.0/20 ; SBL256894\r\n  203.0.113.9  # one host\n2001:db8::/48\n');
    expect(s.size).toBe(3);
    expect(s.has(ip('1.10.31.255'))).toBe(true);
    expect(s.has(ip('203.0.113.9'))).toBe(true);
    expect(s.has(ip('2001:db8:0:ffff::1'))).toBe(true);
  });

  it('names the first bad line of a list', () => {
    expect(() => parseCidrList('10.0.0.0/8\n\n10.0.0.1/8\n')).toThrow('line 3: "10.0.0.1/8" is not a CIDR block: the address has bits set beyond the prefix length; use the network address');
    expect(() => parseCidrList('1.2.3.4 5.6.7.8\n')).toThrow(/^line 1: "1.2.3.4 5.6.7.8" is not a CIDR block/);
  });
});

describe('the client address', () => {
  const proxies = set('10.0.0.0/8');

  it('is the TCP peer unless the peer is a trusted proxy', () => {
    expect(clientAddress('198.51.100.1', ['203.0.113.9'], undefined)).toEqual(ip('198.51.100.1'));
    expect(clientAddress('198.51.100.1', ['203.0.113.9'], proxies)).toEqual(ip('198.51.100.1'));
    expect(clientAddress(undefined, [], undefined)).toBeUndefined();
  });

  it('behind trusted proxies is the rightmost X-Forwarded-For entry they did not add, across header lines', () => {
    expect(clientAddress('10.0.0.1', ['203.0.113.9'], proxies)).toEqual(ip('203.0.113.9'));
    // The client forged the leftmost entry; the proxies appended the address they saw.
    expect(clientAddress('10.0.0.1', ['1.1.1.1, 203.0.113.9, 10.0.0.2'], proxies)).toEqual(ip('203.0.113.9'));
    expect(clientAddress('10.0.0.1', ['1.1.1.1', '203.0.113.9', '10.0.0.2'], proxies)).toEqual(ip('203.0.113.9'));
    expect(clientAddress('10.0.0.1', ['10.0.0.3, 10.0.0.2'], proxies)).toEqual(ip('10.0.0.3'));
    expect(clientAddress('10.0.0.1', [], proxies)).toEqual(ip('10.0.0.1'));
  });

  it('is unknown when an entry that decides cannot be read, but not for junk left of the client', () => {
    expect(clientAddress('10.0.0.1', ['203.0.113.9, unknown'], proxies)).toBeUndefined();
    expect(clientAddress('10.0.0.1', ['junk, 203.0.113.9'], proxies)).toEqual(ip('203.0.113.9'));
  });
});

describe('allow and deny', () => {
  const lists = (allow: string[] | undefined, deny: string[]) => ({
    allow: allow === undefined ? undefined : [{ current: set(...allow) }],
    deny: [{ current: set(...deny) }],
    trustedProxies: undefined,
  });

  it('deny wins; with an allow list only its addresses pass; an empty allow list lets nobody in', () => {
    expect(ipRefusal(ip('10.0.0.1'), lists(['10.0.0.0/8'], ['10.0.0.1']))).toBe('the client address is on a deny list');
    expect(ipRefusal(ip('10.0.0.2'), lists(['10.0.0.0/8'], ['10.0.0.1']))).toBeUndefined();
    expect(ipRefusal(ip('192.0.2.1'), lists(['10.0.0.0/8'], []))).toBe('the client address is not on the allow list');
    expect(ipRefusal(ip('192.0.2.1'), lists(undefined, ['10.0.0.0/8']))).toBeUndefined();
    expect(ipRefusal(ip('192.0.2.1'), lists([], []))).toBe('the client address is not on the allow list');
    expect(ipRefusal(undefined, lists(undefined, []))).toBe('the client address is unknown');
  });
});

describe('ipList filter', () => {
  const cleanups: Array<() => void> = [];
  const filters: HttpFilter[] = [];
  afterEach(async () => {
    for (const f of filters.splice(0)) await f.close?.();
    for (const c of cleanups.splice(0)) c();
  });

  function dir(): string {
    const t = tempDir('meshward-iplist-');
    cleanups.push(t.cleanup);
    return t.dir;
  }

  async function make(settings: Record<string, unknown>, configDir = dir()) {
    const env = filterEnv({ configDir });
    const filter = await ipList.create(ipList.settings.parse(settings), env);
    filters.push(filter);
    return { filter, env };
  }

  const from = (filter: HttpFilter, sourceIp: string | undefined, headers: Record<string, string> = {}) =>
    filter.onRequest!(hopContext({ ...(sourceIp === undefined ? {} : { sourceIp }), headers })) as LocalReply | undefined;

  it('refuses settings that list nothing or hold a bad block, naming it', () => {
    const refuse = (s: Record<string, unknown>) => ipList.settings.safeParse(s, { error: plainIssueMessage }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(refuse({})).toEqual([': lists nothing: give allow, allowFiles, deny or denyFiles']);
    expect(refuse({ deny: ['10.0.0.0/33'] })).toEqual(['deny.0: "10.0.0.0/33" is not a CIDR block: the prefix length must be 0-32']);
    expect(refuse({ allow: ['10.0.0.0/8'], trustedProxies: ['proxy.local'] })).toEqual([
      'trustedProxies.0: "proxy.local" is not a CIDR block: the address is not an IPv4 or IPv6 address',
    ]);
  });

  it('answers 403 to a denied address, IPv4-mapped spellings included, and to an unknown one', async () => {
    const { filter } = await make({ deny: ['10.0.0.0/8', '2001:db8::/32'] });
    for (const source of ['10.1.2.3', '::ffff:10.1.2.3', '2001:db8::5', undefined]) {
      const reply = from(filter, source);
      expect(reply?.status, source).toBe(403);
    }
    expect(JSON.parse(from(filter, '10.1.2.3')!.body)).toMatchObject({ error: 'forbidden', reason: 'the client address is on a deny list' });
    expect(from(filter, '192.0.2.1')).toBeUndefined();
    const ctx = hopContext({ sourceIp: '10.0.0.1' });
    filter.onRequest!(ctx);
    expect(ctx.decision).toEqual({ outcome: 'deny', rule: 'ipList' });
  });

  it('reads X-Forwarded-For only from trusted proxies', async () => {
    const { filter } = await make({ deny: ['203.0.113.0/24'], trustedProxies: ['10.0.0.0/8'] });
    expect(from(filter, '10.0.0.1', { 'x-forwarded-for': '203.0.113.9' })?.status).toBe(403);
    expect(from(filter, '192.0.2.1', { 'x-forwarded-for': '203.0.113.9' })).toBeUndefined();
    expect(from(filter, '203.0.113.9', { 'x-forwarded-for': '192.0.2.1' })?.status).toBe(403);
    const untrusting = (await make({ deny: ['203.0.113.0/24'] })).filter;
    expect(from(untrusting, '10.0.0.1', { 'x-forwarded-for': '203.0.113.9' })).toBeUndefined();
  });

  it('takes lists from files, inline and file lists together, and reloads a changed file keeping the last good one', async () => {
    const d = dir();
    writeFileSync(join(d, 'drop.txt'), '# feed\n198.51.100.0/24 ; SBL1\n');
    writeFileSync(join(d, 'office.txt'), '192.0.2.0/24\n');
    const { filter, env } = await make({ allow: ['198.51.100.0/24'], allowFiles: ['office.txt'], denyFiles: ['drop.txt'] }, d);
    expect(from(filter, '192.0.2.10')).toBeUndefined();
    expect(from(filter, '198.51.100.1')?.status).toBe(403);
    expect(from(filter, '203.0.113.1')?.status).toBe(403);
    writeFileSync(join(d, 'drop.txt'), '198.51.100.0/24\nnot-an-address\n');
    expect(await env.waitFor(/IP list rejected/)).toContain('line 2: \\"not-an-address\\" is not a CIDR block');
    expect(from(filter, '198.51.100.1')?.status).toBe(403);
    writeFileSync(join(d, 'drop.txt'), '# emptied\n');
    await env.waitFor(/IP list reloaded/);
    expect(from(filter, '198.51.100.1')).toBeUndefined();
  });

  it('refuses to start on a missing or bad list file, naming file and line', async () => {
    const d = dir();
    await expect(make({ denyFiles: ['nope.txt'] }, d)).rejects.toThrow(/nope\.txt: file not found/);
    writeFileSync(join(d, 'bad.txt'), '10.0.0.0/8\n300.1.1.1\n');
    await expect(make({ denyFiles: ['bad.txt'] }, d)).rejects.toThrow(/bad\.txt: line 2: "300\.1\.1\.1" is not a CIDR block/);
  });
});

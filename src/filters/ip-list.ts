import { resolve } from 'node:path';
import { z } from 'zod';
import { parseIpAddress, type IpAddress } from '../authz/index.js';
import { strictObject } from '../config/index.js';
import { replies, type LocalReply } from './local-reply.js';
import type { HopContext } from './chain.js';
import { cidrBlock, CidrSet, parseCidrList } from './cidr-set.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';
import { headerValues } from './request-headers.js';
import { WatchedFile } from './watched-file.js';

// `ipList`: allow and deny lists of CIDR blocks, written inline or kept in files in the one-block-per-line format
// threat feeds use (reloaded on change). Deny wins; with an allow list, an address must be on it. The address is
// the TCP peer's: X-Forwarded-For is read only when the peer is one of `trustedProxies`, and then from the right,
// skipping the trusted proxies (the rightmost address a trusted proxy did not add itself is the client's).

const cidr = z.string().superRefine((text, ctx) => {
  try {
    cidrBlock(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const settings = strictObject({
  allow: z.array(cidr).optional(),
  allowFiles: z.array(z.string().min(1)).optional(),
  deny: z.array(cidr).default([]),
  denyFiles: z.array(z.string().min(1)).default([]),
  trustedProxies: z.array(cidr).optional(),
}).refine((s) => s.allow !== undefined || s.allowFiles !== undefined || s.deny.length > 0 || s.denyFiles.length > 0, {
  message: 'lists nothing: give allow, allowFiles, deny or denyFiles',
});

export type IpListSettings = z.output<typeof settings>;

/** The lists a request is judged by; files are read through `current`, so a reload applies to the next request. */
export interface IpLists {
  /** Undefined: no allow list, every address not denied passes. An empty list allows nobody. */
  allow: ReadonlyArray<{ current: CidrSet }> | undefined;
  deny: ReadonlyArray<{ current: CidrSet }>;
  trustedProxies: CidrSet | undefined;
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost X-Forwarded-For entry that
 * is not a trusted proxy (the leftmost if all are). Undefined when an address that decides cannot be parsed.
 */
export function clientAddress(sourceIp: string | undefined, forwardedFor: readonly string[], trustedProxies: CidrSet | undefined): IpAddress | undefined {
  const peer = parseIpAddress(sourceIp);
  if (peer === undefined || trustedProxies === undefined || !trustedProxies.has(peer)) return peer;
  const hops = forwardedFor.flatMap((value) => value.split(',')).map((entry) => entry.trim());
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseIpAddress(hops[i]);
    if (hop === undefined) return undefined;
    client = hop;
    if (!trustedProxies.has(hop)) break;
  }
  return client;
}

/** Why the address is refused, or undefined when it may pass. Deny wins over allow. */
export function ipRefusal(address: IpAddress | undefined, lists: IpLists): string | undefined {
  if (address === undefined) return 'the client address is unknown';
  if (lists.deny.some((list) => list.current.has(address))) return 'the client address is on a deny list';
  if (lists.allow !== undefined && !lists.allow.some((list) => list.current.has(address))) return 'the client address is not on the allow list';
  return undefined;
}

export function checkClientAddress(ctx: HopContext, lists: IpLists): LocalReply | undefined {
  const forwardedFor = lists.trustedProxies === undefined ? [] : headerValues(ctx.rawHeaders, 'x-forwarded-for');
  const refusal = ipRefusal(clientAddress(ctx.request.sourceIp, forwardedFor, lists.trustedProxies), lists);
  if (refusal === undefined) return undefined;
  ctx.decision = { outcome: 'deny', rule: 'ipList' };
  return replies.forbidden(ctx.requestId, refusal);
}

export const ipList: FilterFactory<IpListSettings> = {
  name: 'ipList',
  settings,
  async create(config, env): Promise<HttpFilter> {
    const files: Array<WatchedFile<CidrSet>> = [];
    const open = async (names: readonly string[]) => {
      for (const name of names) files.push(await WatchedFile.open(resolve(env.configDir, name), parseCidrList, env.logger, 'IP list'));
      return files.slice(files.length - names.length);
    };
    const close = () => files.forEach((file) => file.close());
    try {
      const inline = (blocks: readonly string[]) => ({ current: CidrSet.of(blocks.map(cidrBlock)) });
      const allowFiles = await open(config.allowFiles ?? []);
      const lists: IpLists = {
        allow: config.allow === undefined && config.allowFiles === undefined ? undefined : [inline(config.allow ?? []), ...allowFiles],
        deny: [inline(config.deny), ...(await open(config.denyFiles))],
        trustedProxies: config.trustedProxies === undefined ? undefined : inline(config.trustedProxies).current,
      };
      const reload = async () => void (await Promise.all(files.map((file) => file.reload())));
      return { name: 'ipList', onRequest: (ctx) => checkClientAddress(ctx, lists), reload, close };
    } catch (err) {
      close();
      throw err;
    }
  },
};

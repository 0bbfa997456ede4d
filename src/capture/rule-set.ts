import type { CaptureOptions, Family } from './options.js';

// The redirect rules as data, one model for every back end: the renderers only spell it. Every rule is about TCP
// (the hooks jump to meshward's chains for TCP only). Rules are tried in order; the first that matches decides.

export const CHAIN_PREFIX = 'MESHWARD_';
const INBOUND_CHAIN = `${CHAIN_PREFIX}INBOUND`;
const OUTPUT_CHAIN = `${CHAIN_PREFIX}OUTPUT`;

export type RuleAction = { kind: 'return' } | { kind: 'redirect'; toPort: number };

export interface Rule {
  /** Destination port; absent: any. */
  dport?: number;
  /** Destination block; a rule with one applies to that address family only. */
  daddr?: { family: Family; cidr: string };
  /** The socket's owner (OUTPUT only). */
  uidOwner?: number;
  action: RuleAction;
}

export interface Chain {
  name: string;
  rules: Rule[];
}

/** Where the kernel's nat hooks enter meshward's chains. */
export type Hook = 'PREROUTING' | 'OUTPUT';

export interface RuleSet {
  chains: Chain[];
  jumps: { hook: Hook; chain: string }[];
}

const LOOPBACK: Record<Family, string> = { ipv4: '127.0.0.0/8', ipv6: '::1/128' };

const RETURN: RuleAction = { kind: 'return' };

/**
 * Inbound (PREROUTING: connections arriving from outside the pod): excluded ports pass, then each mapped app port
 * goes to its inbound listener, then every other port to the listener for the rest, if there is one. Loopback connections never pass PREROUTING's nat rules, so the sidecar's own
 * connection to the app is left alone by construction.
 * Outbound (OUTPUT: connections made inside the pod): the sidecar's own (by UID), loopback and excluded
 * destinations pass, then the captured ports go to the outbound listener.
 */
export function captureRuleSet(options: CaptureOptions): RuleSet {
  const inbound: Rule[] = [
    ...options.excludeInboundPorts.map((dport) => ({ dport, action: RETURN })),
    ...options.inbound.mappings.map((m) => ({ dport: m.port, action: { kind: 'redirect' as const, toPort: m.listener } })),
    ...(options.inbound.others === undefined ? [] : [{ action: { kind: 'redirect' as const, toPort: options.inbound.others } }]),
  ];

  const toOutbound: RuleAction = { kind: 'redirect', toPort: options.outboundListenerPort };
  const output: Rule[] = [
    { uidOwner: options.proxyUid, action: RETURN },
    ...(['ipv4', 'ipv6'] as const).map((family) => ({ daddr: { family, cidr: LOOPBACK[family] }, action: RETURN })),
    ...options.excludeOutboundCidrs.map((c) => ({ daddr: { family: c.family, cidr: c.text }, action: RETURN })),
    ...(options.outbound.kind === 'all' ? [{ action: toOutbound }] : options.outbound.ports.map((dport) => ({ dport, action: toOutbound }))),
  ];

  return {
    chains: [
      { name: INBOUND_CHAIN, rules: inbound },
      { name: OUTPUT_CHAIN, rules: output },
    ],
    jumps: [
      { hook: 'PREROUTING', chain: INBOUND_CHAIN },
      { hook: 'OUTPUT', chain: OUTPUT_CHAIN },
    ],
  };
}

/** The rules of a chain that apply to one address family. */
export function rulesFor(chain: Chain, family: Family): Rule[] {
  return chain.rules.filter((r) => r.daddr === undefined || r.daddr.family === family);
}

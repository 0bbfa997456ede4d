import type { Family } from './options.js';
import { CHAIN_PREFIX, rulesFor, type Rule, type RuleSet } from './rule-set.js';

// The rule set spelled for `iptables-restore --noflush` (and ip6tables-restore): one transaction per address
// family, applied whole or not at all. --noflush leaves every rule that is not meshward's alone; within the
// transaction, declaring a chain (`:NAME - [0:0]`) creates it or empties it, which is what makes a second run
// replace the first instead of adding to it. Pure: what is installed now comes in as an IptablesPart, read from
// `iptables-save -t nat`.

/** meshward's part of a nat table, as lines in `iptables-save -t nat`'s spelling. */
export interface IptablesPart {
  /** Chains named MESHWARD_*. */
  chains: string[];
  /** Rules outside those chains that jump (or go) to one of them: `-A OUTPUT -p tcp -j MESHWARD_OUTPUT`. */
  jumps: string[];
  /** The rules inside them, in order: `-A MESHWARD_OUTPUT -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 15001`. */
  rules: string[];
}

export const EMPTY_PART: IptablesPart = { chains: [], jumps: [], rules: [] };

// iptables-save quotes arguments with spaces (comments); a quoted "-j MESHWARD_X" inside one is not a jump.
const TOKEN = /"(?:\\.|[^"\\])*"|\S+/g;

export function parseIptablesSave(text: string): IptablesPart {
  const part: IptablesPart = { chains: [], jumps: [], rules: [] };
  let inNat = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    const chain = /^:(\S+)/.exec(line)?.[1];
    if (chain?.startsWith(CHAIN_PREFIX)) part.chains.push(chain);
    const tokens = line.match(TOKEN) ?? [];
    if (tokens[0] !== '-A') continue;
    if (tokens[1]?.startsWith(CHAIN_PREFIX)) part.rules.push(line);
    else if (tokens.some((t, i) => (t === '-j' || t === '-g') && tokens[i + 1]?.startsWith(CHAIN_PREFIX))) part.jumps.push(line);
  }
  return part;
}

export function isEmpty(part: IptablesPart): boolean {
  return part.chains.length === 0 && part.jumps.length === 0;
}

function ruleArgs(rule: Rule): string {
  const parts = ['-p tcp'];
  if (rule.daddr) parts.push(`-d ${rule.daddr.cidr}`);
  if (rule.uidOwner !== undefined) parts.push(`-m owner --uid-owner ${rule.uidOwner}`);
  if (rule.dport !== undefined) parts.push(`-m tcp --dport ${rule.dport}`);
  parts.push(rule.action.kind === 'return' ? '-j RETURN' : `-j REDIRECT --to-ports ${rule.action.toPort}`);
  return parts.join(' ');
}

/** The rule set's part of one family's nat table. */
export function ruleSetPart(ruleSet: RuleSet, family: Family): IptablesPart {
  return {
    chains: ruleSet.chains.map((c) => c.name),
    jumps: ruleSet.jumps.map((j) => `-A ${j.hook} -p tcp -j ${j.chain}`),
    rules: ruleSet.chains.flatMap((chain) => rulesFor(chain, family).map((rule) => `-A ${chain.name} ${ruleArgs(rule)}`)),
  };
}

/**
 * One transaction that turns meshward's part of the table from `current` into `desired`, leaving everything else
 * as it is: the current jumps deleted as printed (`-A` becomes `-D`, so duplicates left by anyone go too), the
 * chains emptied or created, the ones no longer wanted removed, then the desired jumps put first in their chains
 * (so that no other nat rule decides before capture does) and the rules appended. Installing, removing (desired
 * empty) and undoing (desired the state read before) are all this. Undefined when there is nothing to do.
 */
export function iptablesTransaction(desired: IptablesPart, current: IptablesPart): string | undefined {
  if (isEmpty(desired) && isEmpty(current)) return undefined;
  const stale = current.chains.filter((c) => !desired.chains.includes(c));
  return [
    '*nat',
    ...[...desired.chains, ...stale].map((c) => `:${c} - [0:0]`),
    ...current.jumps.map((jump) => jump.replace(/^-A /, '-D ')),
    ...stale.map((c) => `-X ${c}`),
    // Each inserted first, so the last inserted ends up first: reversed, they keep their order.
    ...[...desired.jumps].reverse().map((jump) => jump.replace(/^-A (\S+) /, '-I $1 1 ')),
    ...desired.rules,
    'COMMIT',
    '',
  ].join('\n');
}

import type { Backend } from './backends.js';
import { EMPTY_PART, iptablesTransaction, ruleSetPart, type IptablesPart } from './iptables-rules.js';
import { nftClean, nftInstall } from './nft-rules.js';
import type { Family } from './options.js';
import type { RuleSet } from './rule-set.js';

// The commands that install, remove or undo capture with one back end: each one transaction, given whole on
// standard input. Pure, so that --dry-run prints exactly what would run.

export interface Transaction {
  command: string;
  args: string[];
  input: string;
  /** The address families it covers. */
  families: Family[];
}

/** meshward's part of the nat table of each family an iptables back end covers, as read before any change. */
export type IptablesParts = Partial<Record<Family, IptablesPart>>;

// --wait: queue behind another iptables run instead of failing on the xtables lock (legacy); nf_tables needs no lock.
const RESTORE_ARGS = ['--noflush', '--wait'];

/** One iptables transaction per family, from the part there now to the part wanted; none where nothing changes. */
function iptablesPlan(backend: Backend & { kind: 'iptables' }, families: Family[], desired: (f: Family) => IptablesPart, current: (f: Family) => IptablesPart): Transaction[] {
  return families.flatMap((family) => {
    const input = iptablesTransaction(desired(family), current(family));
    return input === undefined ? [] : [{ command: backend.commands[family].restore, args: RESTORE_ARGS, input, families: [family] }];
  });
}

const nftTransaction = (backend: Backend & { kind: 'nft' }, input: string, families: Family[]): Transaction[] => [{ command: backend.command, args: ['-f', '-'], input, families }];

export function installPlan(backend: Backend, ruleSet: RuleSet, families: Family[], current: IptablesParts): Transaction[] {
  if (backend.kind === 'nft') return nftTransaction(backend, nftInstall(ruleSet), families);
  return iptablesPlan(backend, families, (f) => ruleSetPart(ruleSet, f), (f) => current[f] ?? EMPTY_PART);
}

/** Removes meshward's rules; nothing for a family where it holds none. */
export function cleanPlan(backend: Backend, families: Family[], current: IptablesParts): Transaction[] {
  if (backend.kind === 'nft') return nftTransaction(backend, nftClean(), families);
  return iptablesPlan(backend, families, () => EMPTY_PART, (f) => current[f] ?? EMPTY_PART);
}

/** Puts back what meshward had in `families` before `ruleSet` was installed there (iptables only: nft is one transaction). */
export function undoPlan(backend: Backend, ruleSet: RuleSet, families: Family[], before: IptablesParts): Transaction[] {
  if (backend.kind === 'nft') return [];
  return iptablesPlan(backend, families, (f) => before[f] ?? EMPTY_PART, (f) => ruleSetPart(ruleSet, f));
}

/**
 * What --dry-run shows, reading no state: the install as in a namespace without meshward's rules, or the removal
 * of the rules this rule set installs.
 */
export function dryRunPlan(backend: Backend, ruleSet: RuleSet, families: Family[], clean: boolean): Transaction[] {
  if (!clean) return installPlan(backend, ruleSet, families, {});
  if (backend.kind === 'nft') return cleanPlan(backend, families, {});
  return iptablesPlan(backend, families, () => EMPTY_PART, (f) => ruleSetPart(ruleSet, f));
}

export function formatTransaction(t: Transaction): string {
  return `# ${[t.command, ...t.args].join(' ')}   (${t.families.map((f) => (f === 'ipv4' ? 'IPv4' : 'IPv6')).join(', ')})\n${t.input}`;
}

import type { Rule, RuleSet } from './rule-set.js';

// The rule set spelled for `nft -f`: one table of meshward's own (family inet: IPv4 and IPv6 in one transaction),
// holding a base chain per hook that jumps to the MESHWARD_* chains. Declaring the table and deleting it before
// defining it again makes every run replace the last one in the same atomic transaction, whether or not the table
// was there. Pure.

const NFT_TABLE = 'inet meshward';

// Just before the usual nat priority (dstnat, -100): with several nat chains on a hook the first to translate a
// connection decides, so capture is not overtaken by another table's rules.
const NAT_PRIORITY = -110;

const HOOKS = { PREROUTING: 'prerouting', OUTPUT: 'output' } as const;

function ruleText(rule: Rule): string {
  const parts: string[] = [];
  if (rule.daddr) parts.push(`${rule.daddr.family === 'ipv6' ? 'ip6' : 'ip'} daddr ${rule.daddr.cidr}`);
  if (rule.uidOwner !== undefined) parts.push(`meta skuid ${rule.uidOwner}`);
  if (rule.dport !== undefined) parts.push(`tcp dport ${rule.dport}`);
  // A redirect to a port needs the transport protocol stated in the rule itself.
  else if (rule.action.kind === 'redirect') parts.push('meta l4proto tcp');
  parts.push(rule.action.kind === 'return' ? 'return' : `redirect to :${rule.action.toPort}`);
  return parts.join(' ');
}

/** Removes meshward's table if it is there; nothing else. */
export function nftClean(): string {
  return `table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`;
}

export function nftInstall(ruleSet: RuleSet): string {
  const base = ruleSet.jumps.map(
    (j) => `  chain ${j.hook} {\n    type nat hook ${HOOKS[j.hook]} priority ${NAT_PRIORITY}; policy accept;\n    meta l4proto tcp jump ${j.chain}\n  }`,
  );
  const chains = ruleSet.chains.map((c) => `  chain ${c.name} {\n${c.rules.map((r) => `    ${ruleText(r)}\n`).join('')}  }`);
  return `${nftClean()}table ${NFT_TABLE} {\n${[...base, ...chains].join('\n')}\n}\n`;
}

import type { Family } from './options.js';

// The packet-filter back ends capture can install with, in the order it prefers them when several are present:
// iptables on nf_tables (Debian's default, and what current kernels expect), iptables on the legacy x_tables,
// whichever one an image ships as plain `iptables` (only when neither named variant is there), and nft itself.

export type BackendName = 'iptables-nft' | 'iptables-legacy' | 'iptables' | 'nft';

export interface IptablesBackend {
  kind: 'iptables';
  name: Exclude<BackendName, 'nft'>;
  commands: Record<Family, { save: string; restore: string }>;
}

export interface NftBackend {
  kind: 'nft';
  name: 'nft';
  command: 'nft';
}

export type Backend = IptablesBackend | NftBackend;

function iptables(name: IptablesBackend['name'], suffix: string): IptablesBackend {
  return {
    kind: 'iptables',
    name,
    commands: {
      ipv4: { save: `iptables${suffix}-save`, restore: `iptables${suffix}-restore` },
      ipv6: { save: `ip6tables${suffix}-save`, restore: `ip6tables${suffix}-restore` },
    },
  };
}

export const BACKENDS: readonly Backend[] = [iptables('iptables-nft', '-nft'), iptables('iptables-legacy', '-legacy'), iptables('iptables', ''), { kind: 'nft', name: 'nft', command: 'nft' }];

export const BACKEND_NAMES = BACKENDS.map((b) => b.name);

export function backendNamed(name: string): Backend | undefined {
  return BACKENDS.find((b) => b.name === name);
}

/** The command whose presence means the back end is installed. */
export function presenceCommand(backend: Backend): string {
  return backend.kind === 'nft' ? backend.command : backend.commands.ipv4.restore;
}

/**
 * The back ends to consider, given which commands are installed: plain `iptables` is one of the two named variants
 * under another name wherever those are installed too, so it counts only where neither is.
 */
export function presentBackends(installed: (command: string) => boolean): Backend[] {
  const present = BACKENDS.filter((b) => installed(presenceCommand(b)));
  const variant = present.some((b) => b.name === 'iptables-nft' || b.name === 'iptables-legacy');
  return variant ? present.filter((b) => b.name !== 'iptables') : present;
}

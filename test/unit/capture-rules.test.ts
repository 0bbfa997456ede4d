import { describe, expect, it } from 'vitest';
import { presentBackends } from '../../src/capture/backends.js';
import { EMPTY_PART, iptablesTransaction, parseIptablesSave, ruleSetPart } from '../../src/capture/iptables-rules.js';
import { nftInstall } from '../../src/capture/nft-rules.js';
import { captureFlags, capturesInboundPort, parseCaptureSettings, type CaptureOptions, type CaptureSettings } from '../../src/capture/options.js';
import { cleanPlan, dryRunPlan, installPlan, undoPlan } from '../../src/capture/plan.js';
import { captureRuleSet } from '../../src/capture/rule-set.js';
import { backendNamed } from '../../src/capture/backends.js';

// The pure core of `meshward capture`: settings -> options -> rule set -> iptables-restore / nft text. The
// integration test (test/integration/capture.test.ts) runs the same text against a real kernel.

function options(settings: CaptureSettings = {}): CaptureOptions {
  const parsed = parseCaptureSettings(settings);
  if (!parsed.ok) throw new Error(`${parsed.setting}: ${parsed.error}`);
  return parsed.value;
}

function refusal(settings: CaptureSettings): string {
  const parsed = parseCaptureSettings(settings);
  if (parsed.ok) throw new Error('expected a refusal');
  return `${parsed.setting}: ${parsed.error}`;
}

describe('capture settings', () => {
  it('defaults: every inbound port to 15006, outbound port 80 to 15001, the sidecar as UID 1337', () => {
    expect(options()).toEqual({
      inbound: { mappings: [], others: 15006 },
      excludeInboundPorts: [],
      outbound: { kind: 'ports', ports: [80] },
      outboundListenerPort: 15001,
      excludeOutboundCidrs: [],
      proxyUid: 1337,
    });
  });

  it('maps each app port to its own listener, 15006 unless given, and every other port to the listener * names', () => {
    expect(options({ inboundPorts: '8080' }).inbound).toEqual({ mappings: [{ port: 8080, listener: 15006 }] });
    expect(options({ inboundPorts: '8080:15006, 9090:15007' }).inbound).toEqual({
      mappings: [
        { port: 8080, listener: 15006 },
        { port: 9090, listener: 15007 },
      ],
    });
    expect(options({ inboundPorts: '*:16006' }).inbound).toEqual({ mappings: [], others: 16006 });
    // An app with several ports: each to its listener, and whatever else arrives to the first, not around the sidecar.
    expect(options({ inboundPorts: '8080:15006,9090:15007,*:15006' }).inbound).toEqual({
      mappings: [
        { port: 8080, listener: 15006 },
        { port: 9090, listener: 15007 },
      ],
      others: 15006,
    });
    expect(options({ inboundPorts: '9090:15007, *' }).inbound).toEqual({ mappings: [{ port: 9090, listener: 15007 }], others: 15006 });
    expect(options({ inboundPorts: 'none' }).inbound).toEqual({ mappings: [] });
    expect(options({ outboundPorts: '*' }).outbound).toEqual({ kind: 'all' });
    expect(options({ outboundPorts: 'none' }).outbound).toEqual({ kind: 'ports', ports: [] });
  });

  it('takes IPv4 and IPv6 blocks, a bare address as a single-address block', () => {
    expect(options({ excludeOutboundCidrs: '10.96.0.0/12, fd00::/8,169.254.169.254' }).excludeOutboundCidrs).toEqual([
      { family: 'ipv4', text: '10.96.0.0/12' },
      { family: 'ipv6', text: 'fd00::/8' },
      { family: 'ipv4', text: '169.254.169.254/32' },
    ]);
  });

  it.each<[CaptureSettings, string]>([
    [{ inboundPorts: '8080,*,*:15007' }, 'inboundPorts: "*:15007" is listed twice'],
    [{ inboundPorts: '8080:0' }, 'inboundPorts: "0" is not a port from 1 to 65535'],
    [{ inboundPorts: '8080:15006:1' }, 'inboundPorts: "8080:15006:1" is not PORT, PORT:LISTENER, * or *:LISTENER'],
    [{ inboundPorts: '8080,8080:15007' }, 'inboundPorts: "8080:15007" is listed twice'],
    [{ inboundPorts: '' }, 'inboundPorts: give "*", "none" or a list of PORT[:LISTENER]'],
    [{ inboundPorts: '*:x' }, 'inboundPorts: "x" is not a port from 1 to 65535'],
    [{ excludeInboundPorts: '70000' }, 'excludeInboundPorts: "70000" is not a port from 1 to 65535'],
    [{ inboundPorts: '8080', excludeInboundPorts: '8080' }, 'excludeInboundPorts: port 8080 is also listed to be captured'],
    [{ outboundPorts: '80,http' }, 'outboundPorts: "http" is not a port from 1 to 65535'],
    [{ outboundListenerPort: '99999' }, 'outboundListenerPort: "99999" is not a port from 1 to 65535'],
    [{ excludeOutboundCidrs: '10.0.0.0/33' }, 'excludeOutboundCidrs: "10.0.0.0/33" is not an IPv4 or IPv6 CIDR block (ADDRESS/PREFIX)'],
    [{ excludeOutboundCidrs: 'example.org/8' }, 'excludeOutboundCidrs: "example.org/8" is not an IPv4 or IPv6 CIDR block (ADDRESS/PREFIX)'],
    [{ proxyUid: '0' }, 'proxyUid: UID 0 would exempt every root process from capture; run the sidecar as a UID of its own'],
    [{ proxyUid: '-1' }, 'proxyUid: "-1" is not a UID'],
    [{ proxyUid: '4294967295' }, 'proxyUid: "4294967295" is not a UID'],
  ])('refuses %j, naming the setting', (settings, message) => {
    expect(refusal(settings)).toBe(message);
  });

  it('says which inbound ports are captured', () => {
    const all = options({ excludeInboundPorts: '15000,8081' });
    expect([8080, 9090, 8081, 15000].map((p) => capturesInboundPort(all, p))).toEqual([true, true, false, false]);
    const listed = options({ inboundPorts: '8080' });
    expect([8080, 9090].map((p) => capturesInboundPort(listed, p))).toEqual([true, false]);
    const rest = options({ inboundPorts: '9090:15007,*', excludeInboundPorts: '8081' });
    expect([9090, 7000, 8081].map((p) => capturesInboundPort(rest, p))).toEqual([true, true, false]);
  });

  it('spells every option out as flags that parse back to the same options', () => {
    const settingOf: Record<string, keyof CaptureSettings> = {
      '--inbound-ports': 'inboundPorts',
      '--exclude-inbound-ports': 'excludeInboundPorts',
      '--outbound-ports': 'outboundPorts',
      '--outbound-listener-port': 'outboundListenerPort',
      '--exclude-outbound-cidrs': 'excludeOutboundCidrs',
      '--proxy-uid': 'proxyUid',
    };
    for (const settings of [{}, { inboundPorts: 'none', outboundPorts: 'none' }, { inboundPorts: '8080:15006,9090:15007', excludeOutboundCidrs: '10.0.0.0/8,fd00::/8', proxyUid: '2000', outboundPorts: '*' }, { inboundPorts: '*,9090:15007' }]) {
      const flags = captureFlags(options(settings));
      const back: CaptureSettings = {};
      for (let i = 0; i < flags.length; i += 2) back[settingOf[flags[i]!]!] = flags[i + 1]!;
      expect(options(back)).toEqual(options(settings));
    }
    expect(captureFlags(options())).toEqual(['--inbound-ports', '*:15006', '--outbound-ports', '80', '--outbound-listener-port', '15001', '--proxy-uid', '1337']);
  });
});

const EXAMPLE = options({ excludeInboundPorts: '8081,15000', outboundPorts: '80,8080', excludeOutboundCidrs: '10.96.0.0/12,fd00::/8' });

describe('iptables-restore rendering', () => {
  it('installs into a table without meshward rules: chains declared, jumps first in PREROUTING and OUTPUT, rules in order', () => {
    expect(iptablesTransaction(ruleSetPart(captureRuleSet(EXAMPLE), 'ipv4'), EMPTY_PART)).toBe(
      [
        '*nat',
        ':MESHWARD_INBOUND - [0:0]',
        ':MESHWARD_OUTPUT - [0:0]',
        '-I OUTPUT 1 -p tcp -j MESHWARD_OUTPUT',
        '-I PREROUTING 1 -p tcp -j MESHWARD_INBOUND',
        '-A MESHWARD_INBOUND -p tcp -m tcp --dport 8081 -j RETURN',
        '-A MESHWARD_INBOUND -p tcp -m tcp --dport 15000 -j RETURN',
        '-A MESHWARD_INBOUND -p tcp -j REDIRECT --to-ports 15006',
        '-A MESHWARD_OUTPUT -p tcp -m owner --uid-owner 1337 -j RETURN',
        '-A MESHWARD_OUTPUT -p tcp -d 127.0.0.0/8 -j RETURN',
        '-A MESHWARD_OUTPUT -p tcp -d 10.96.0.0/12 -j RETURN',
        '-A MESHWARD_OUTPUT -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 15001',
        '-A MESHWARD_OUTPUT -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15001',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('keeps each family to its own addresses', () => {
    const v6 = ruleSetPart(captureRuleSet(EXAMPLE), 'ipv6').rules.filter((r) => r.includes(' -d '));
    expect(v6).toEqual(['-A MESHWARD_OUTPUT -p tcp -d ::1/128 -j RETURN', '-A MESHWARD_OUTPUT -p tcp -d fd00::/8 -j RETURN']);
  });

  it('maps each listed app port to its listener, and captures nothing inbound with "none"', () => {
    const rules = (o: CaptureOptions) => ruleSetPart(captureRuleSet(o), 'ipv4').rules.filter((r) => r.startsWith('-A MESHWARD_INBOUND'));
    expect(rules(options({ inboundPorts: '8080:15006,9090:15007' }))).toEqual([
      '-A MESHWARD_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006',
      '-A MESHWARD_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15007',
    ]);
    expect(rules(options({ inboundPorts: 'none' }))).toEqual([]);
    // The rest after the listed ports: a port nobody listed still meets the sidecar, never the app.
    expect(rules(options({ inboundPorts: '*:15006,8080:15006,9090:15007', excludeInboundPorts: '8081' }))).toEqual([
      '-A MESHWARD_INBOUND -p tcp -m tcp --dport 8081 -j RETURN',
      '-A MESHWARD_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006',
      '-A MESHWARD_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15007',
      '-A MESHWARD_INBOUND -p tcp -j REDIRECT --to-ports 15006',
    ]);
  });

  // What iptables-save prints for a pod where meshward ran before, next to a CNI's rules: a foreign chain, a
  // comment that mentions a meshward chain, a stale chain of an older meshward, and a duplicated jump.
  const SAVED = `# Generated by iptables-save v1.8.9 on Mon Dec  7 10:00:00 2026
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j MESHWARD_NOT_NAT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:MESHWARD_INBOUND - [0:0]
:MESHWARD_OLD - [0:0]
:MESHWARD_OUTPUT - [0:0]
-A PREROUTING -p tcp -j MESHWARD_INBOUND
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -p tcp -j MESHWARD_OUTPUT
-A OUTPUT -p tcp -j MESHWARD_OUTPUT
-A OUTPUT -m comment --comment "not a jump: -j MESHWARD_OUTPUT" -j CNI-HOSTPORT-DNAT
-A CNI-HOSTPORT-DNAT -p tcp -g MESHWARD_OLD
-A MESHWARD_INBOUND -p tcp -j REDIRECT --to-ports 15006
-A MESHWARD_OUTPUT -p tcp -m owner --uid-owner 1337 -j RETURN
COMMIT
# Completed on Mon Dec  7 10:00:00 2026
`;

  it('reads meshward\'s part of the nat table from iptables-save, and nothing else', () => {
    expect(parseIptablesSave(SAVED)).toEqual({
      chains: ['MESHWARD_INBOUND', 'MESHWARD_OLD', 'MESHWARD_OUTPUT'],
      jumps: ['-A PREROUTING -p tcp -j MESHWARD_INBOUND', '-A OUTPUT -p tcp -j MESHWARD_OUTPUT', '-A OUTPUT -p tcp -j MESHWARD_OUTPUT', '-A CNI-HOSTPORT-DNAT -p tcp -g MESHWARD_OLD'],
      rules: ['-A MESHWARD_INBOUND -p tcp -j REDIRECT --to-ports 15006', '-A MESHWARD_OUTPUT -p tcp -m owner --uid-owner 1337 -j RETURN'],
    });
  });

  it('installs over an earlier run in one transaction: every old jump deleted, stale chains removed, one set left', () => {
    const text = iptablesTransaction(ruleSetPart(captureRuleSet(options()), 'ipv4'), parseIptablesSave(SAVED))!;
    expect(text.split('\n').slice(0, 12)).toEqual([
      '*nat',
      ':MESHWARD_INBOUND - [0:0]',
      ':MESHWARD_OUTPUT - [0:0]',
      ':MESHWARD_OLD - [0:0]',
      '-D PREROUTING -p tcp -j MESHWARD_INBOUND',
      '-D OUTPUT -p tcp -j MESHWARD_OUTPUT',
      '-D OUTPUT -p tcp -j MESHWARD_OUTPUT',
      '-D CNI-HOSTPORT-DNAT -p tcp -g MESHWARD_OLD',
      '-X MESHWARD_OLD',
      '-I OUTPUT 1 -p tcp -j MESHWARD_OUTPUT',
      '-I PREROUTING 1 -p tcp -j MESHWARD_INBOUND',
      '-A MESHWARD_INBOUND -p tcp -j REDIRECT --to-ports 15006',
    ]);
    expect(text).not.toContain('CNI-HOSTPORT-DNAT -m');
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
  });

  it('cleans only meshward\'s chains and the jumps to them; nothing to do where there are none', () => {
    const iptablesNft = backendNamed('iptables-nft')!;
    const [v4] = cleanPlan(iptablesNft, ['ipv4'], { ipv4: parseIptablesSave(SAVED) });
    expect(v4).toEqual({
      command: 'iptables-nft-restore',
      args: ['--noflush', '--wait'],
      families: ['ipv4'],
      input: [
        '*nat',
        ':MESHWARD_INBOUND - [0:0]',
        ':MESHWARD_OLD - [0:0]',
        ':MESHWARD_OUTPUT - [0:0]',
        '-D PREROUTING -p tcp -j MESHWARD_INBOUND',
        '-D OUTPUT -p tcp -j MESHWARD_OUTPUT',
        '-D OUTPUT -p tcp -j MESHWARD_OUTPUT',
        '-D CNI-HOSTPORT-DNAT -p tcp -g MESHWARD_OLD',
        '-X MESHWARD_INBOUND',
        '-X MESHWARD_OLD',
        '-X MESHWARD_OUTPUT',
        'COMMIT',
        '',
      ].join('\n'),
    });
    expect(cleanPlan(iptablesNft, ['ipv4', 'ipv6'], { ipv4: EMPTY_PART })).toEqual([]);
  });

  it('undoes an install by putting back exactly what was there before it', () => {
    const before = parseIptablesSave(SAVED);
    const [undo] = undoPlan(backendNamed('iptables-legacy')!, captureRuleSet(EXAMPLE), ['ipv4'], { ipv4: before });
    expect(undo!.command).toBe('iptables-legacy-restore');
    const lines = undo!.input.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['-D PREROUTING -p tcp -j MESHWARD_INBOUND', '-D OUTPUT -p tcp -j MESHWARD_OUTPUT', ...before.rules]));
    // The old jumps come back first in their chains, in their old order.
    expect(lines.filter((l) => l.startsWith('-I '))).toEqual(['-I CNI-HOSTPORT-DNAT 1 -p tcp -g MESHWARD_OLD', '-I OUTPUT 1 -p tcp -j MESHWARD_OUTPUT', '-I OUTPUT 1 -p tcp -j MESHWARD_OUTPUT', '-I PREROUTING 1 -p tcp -j MESHWARD_INBOUND']);
    // Undoing a first install removes everything meshward put there.
    const [first] = undoPlan(backendNamed('iptables-legacy')!, captureRuleSet(EXAMPLE), ['ipv4'], {});
    expect(first!.input).toMatch(/-X MESHWARD_INBOUND\n-X MESHWARD_OUTPUT\nCOMMIT/);
    expect(first!.input).not.toMatch(/^-[AI] /m);
  });
});

describe('nft rendering', () => {
  it('one inet table of meshward\'s own, replaced whole in the same transaction', () => {
    expect(nftInstall(captureRuleSet(EXAMPLE))).toBe(`table inet meshward
delete table inet meshward
table inet meshward {
  chain PREROUTING {
    type nat hook prerouting priority -110; policy accept;
    meta l4proto tcp jump MESHWARD_INBOUND
  }
  chain OUTPUT {
    type nat hook output priority -110; policy accept;
    meta l4proto tcp jump MESHWARD_OUTPUT
  }
  chain MESHWARD_INBOUND {
    tcp dport 8081 return
    tcp dport 15000 return
    meta l4proto tcp redirect to :15006
  }
  chain MESHWARD_OUTPUT {
    meta skuid 1337 return
    ip daddr 127.0.0.0/8 return
    ip6 daddr ::1/128 return
    ip daddr 10.96.0.0/12 return
    ip6 daddr fd00::/8 return
    tcp dport 80 redirect to :15001
    tcp dport 8080 redirect to :15001
  }
}
`);
  });

  it('is one transaction for both families, and cleaning removes the table only', () => {
    const nft = backendNamed('nft')!;
    expect(installPlan(nft, captureRuleSet(EXAMPLE), ['ipv4', 'ipv6'], {}).map((t) => [t.command, t.args, t.families])).toEqual([['nft', ['-f', '-'], ['ipv4', 'ipv6']]]);
    expect(dryRunPlan(nft, captureRuleSet(EXAMPLE), ['ipv4', 'ipv6'], true)[0]!.input).toBe('table inet meshward\ndelete table inet meshward\n');
  });
});

describe('back ends', () => {
  it('prefers iptables-nft, then iptables-legacy; plain iptables only where neither is installed; nft last', () => {
    const names = (installed: string[]) => presentBackends((c) => installed.includes(c)).map((b) => b.name);
    expect(names(['iptables-nft-restore', 'iptables-legacy-restore', 'iptables-restore', 'nft'])).toEqual(['iptables-nft', 'iptables-legacy', 'nft']);
    expect(names(['iptables-legacy-restore', 'iptables-restore'])).toEqual(['iptables-legacy']);
    expect(names(['iptables-restore', 'nft'])).toEqual(['iptables', 'nft']);
    expect(names(['nft'])).toEqual(['nft']);
    expect(names([])).toEqual([]);
  });
});

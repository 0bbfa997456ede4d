import {
  BACKEND_NAMES,
  CAPTURE_DEFAULTS,
  captureRuleSet,
  describeCapture,
  dryRunBackend,
  dryRunPlan,
  familyNames,
  formatTransaction,
  installCapture,
  ipFamilies,
  parseCaptureSettings,
  removeCapture,
  type BackendName,
  type CaptureSettings,
} from '../capture/index.js';
import { parseFlags, UsageError, type Command } from './command.js';

const usage = `
Usage: meshward capture [--inbound-ports SPEC] [--exclude-inbound-ports PORTS] [--outbound-ports PORTS]
                        [--outbound-listener-port PORT] [--exclude-outbound-cidrs CIDRS] [--proxy-uid UID]
                        [--backend NAME] [--dry-run]
       meshward capture --clean [--backend NAME] [--dry-run]

Puts the sidecar in the path of the pod's TCP traffic with NAT redirect rules in the current network namespace
(what the meshward-init container runs): the app needs no change and cannot be reached around its sidecar. The
rules live in chains of meshward's own (MESHWARD_INBOUND, MESHWARD_OUTPUT; with nft, the table inet meshward),
installed in one transaction per address family; running it again replaces them. Needs NET_ADMIN (and NET_RAW for
iptables). IPv6 is captured too where the kernel has it.

Options:
  --inbound-ports SPEC          inbound TCP redirected to the sidecar's inbound listener (default "${CAPTURE_DEFAULTS.inboundPorts}"):
                                "*" every port but the excluded ones, to ${CAPTURE_DEFAULTS.inboundListenerPort} ("*:PORT" to another listener);
                                "8080" or "8080:15006,9090:15007": each app port to its own listener (the
                                sidecar cannot see which port was called, so the listener's port tells it);
                                "8080:15006,9090:15007,*:15006": and every other port to 15006;
                                "none": inbound is not captured
  --exclude-inbound-ports P,..  ports reached directly, never captured: health probes, metrics, the sidecar's
                                admin port (15000) where the kubelet probes it
  --outbound-ports P,..         outbound TCP to these ports goes to the outbound listener, which routes by Host
                                (default ${CAPTURE_DEFAULTS.outboundPorts}; "*" every port; "none")
  --outbound-listener-port P    the sidecar's outbound listener (default ${CAPTURE_DEFAULTS.outboundListenerPort})
  --exclude-outbound-cidrs C,.. destinations reached directly (loopback always is)
  --proxy-uid UID               the sidecar's UID, whose own connections are never captured (default ${CAPTURE_DEFAULTS.proxyUid})
  --backend NAME                ${BACKEND_NAMES.join(' | ')}; default: the one that holds meshward's rules
                                already, else the first of these that is installed and works
  --dry-run                     print the transactions instead of running them (needs no privilege; shows a
                                namespace without meshward's rules)
  --clean                       remove meshward's chains and the jumps to them, nothing else

Exit 0 when done, 1 when it could not be done (nothing is then left half-way), 2 for a wrong invocation.
`;

const SETTING_FLAGS: Record<keyof CaptureSettings, string> = {
  inboundPorts: 'inbound-ports',
  excludeInboundPorts: 'exclude-inbound-ports',
  outboundPorts: 'outbound-ports',
  outboundListenerPort: 'outbound-listener-port',
  excludeOutboundCidrs: 'exclude-outbound-cidrs',
  proxyUid: 'proxy-uid',
};

export const captureCommand: Command = {
  name: 'capture',
  summary: 'redirect the pod\'s traffic through the sidecar (iptables or nft)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...Object.fromEntries(Object.values(SETTING_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
      backend: { type: 'string' },
      'dry-run': { type: 'boolean' },
      clean: { type: 'boolean' },
    });
    const flags = values as Record<string, string | boolean | undefined>;
    const backend = flags.backend as string | undefined;
    if (backend !== undefined && !(BACKEND_NAMES as string[]).includes(backend)) throw new UsageError(`--backend "${backend}" is not one of ${BACKEND_NAMES.join(', ')}`);
    const forced = backend as BackendName | undefined;
    const given = Object.fromEntries(Object.entries(SETTING_FLAGS).flatMap(([key, flag]) => (typeof flags[flag] === 'string' ? [[key, flags[flag]]] : [])));
    if (flags.clean && Object.keys(given).length > 0) throw new UsageError('--clean takes only --backend and --dry-run');
    const parsed = parseCaptureSettings(given as CaptureSettings);
    if (!parsed.ok) throw new UsageError(`--${SETTING_FLAGS[parsed.setting]}: ${parsed.error}`);
    const ruleSet = captureRuleSet(parsed.value);

    if (flags['dry-run']) {
      const plan = dryRunPlan(dryRunBackend(forced), ruleSet, ipFamilies(), flags.clean === true);
      process.stdout.write(plan.map(formatTransaction).join('\n'));
      return 0;
    }
    if (flags.clean) {
      const removed = await removeCapture(forced);
      process.stdout.write(
        removed.length === 0
          ? 'meshward capture: nothing to remove (no meshward chains here)\n'
          : removed.map((r) => `meshward capture: removed meshward's chains from ${r.backend} (${familyNames(r.families)})\n`).join(''),
      );
      return 0;
    }
    const outcome = await installCapture(ruleSet, forced);
    process.stdout.write([`meshward capture: installed with ${outcome.backend} (${familyNames(outcome.families)})`, ...describeCapture(parsed.value), ''].join('\n'));
    return 0;
  },
};

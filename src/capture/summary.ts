import type { CaptureOptions, Family } from './options.js';

// What capture does, in words, for the command's output. Pure.

const FAMILY_NAMES: Record<Family, string> = { ipv4: 'IPv4', ipv6: 'IPv6' };

export function familyNames(families: Family[]): string {
  return families.map((f) => FAMILY_NAMES[f]).join(' and ');
}

export function describeCapture(options: CaptureOptions): string[] {
  const { inbound, outbound } = options;
  const except = options.excludeInboundPorts.length > 0 ? ` (not ${options.excludeInboundPorts.join(', ')})` : '';
  const inboundParts = [
    ...inbound.mappings.map((m) => `${m.port} -> ${m.listener}`),
    ...(inbound.others === undefined ? [] : [`every ${inbound.mappings.length > 0 ? 'other ' : ''}TCP port${except} -> ${inbound.others}`]),
  ];
  const inboundLine = inboundParts.length === 0 ? 'not captured' : inboundParts.join(', ');
  const exempt = ['127.0.0.0/8', '::1', ...options.excludeOutboundCidrs.map((c) => c.text)].join(', ');
  const outboundLine =
    outbound.kind === 'ports' && outbound.ports.length === 0
      ? 'not captured'
      : `TCP to ${outbound.kind === 'all' ? 'every port' : `port${outbound.ports.length > 1 ? 's' : ''} ${outbound.ports.join(', ')}`} -> ${options.outboundListenerPort}, except from UID ${options.proxyUid} (the sidecar) and to ${exempt}`;
  return [`  inbound   ${inboundLine}`, `  outbound  ${outboundLine}`];
}

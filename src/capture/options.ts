import { isIP } from 'node:net';

// What `meshward capture` is asked to do, parsed and checked. Pure: the CLI's flags and the Kubernetes annotations
// both come through here, so a value `meshward inject` accepts is one the init container accepts.

export type Family = 'ipv4' | 'ipv6';

export interface PortMapping {
  /** The app's port, as callers address it. */
  port: number;
  /** The sidecar's inbound listener for that port. */
  listener: number;
}

/**
 * Where inbound TCP goes: each mapped app port to its own listener (Node.js cannot read a redirected connection's
 * original port, so the listener's port is what tells the sidecar which app port was called), and every other port
 * but the excluded ones to `others` when it is given. `*:15006` is { mappings: [], others: 15006 }; `none` is
 * { mappings: [] }, no inbound capture.
 */
export interface InboundCapture {
  mappings: PortMapping[];
  others?: number;
}

export type OutboundCapture = { kind: 'all' } | { kind: 'ports'; ports: number[] };

export interface Cidr {
  family: Family;
  /** As written: both back ends mask host bits themselves. */
  text: string;
}

export interface CaptureOptions {
  inbound: InboundCapture;
  excludeInboundPorts: number[];
  outbound: OutboundCapture;
  outboundListenerPort: number;
  excludeOutboundCidrs: Cidr[];
  /** The sidecar's UID: its own connections are never captured. */
  proxyUid: number;
}

/** The settings as text, one per flag (`--inbound-ports`, ...) or annotation; an absent one takes its default. */
export interface CaptureSettings {
  inboundPorts?: string;
  excludeInboundPorts?: string;
  outboundPorts?: string;
  outboundListenerPort?: string;
  excludeOutboundCidrs?: string;
  proxyUid?: string;
}

export const CAPTURE_DEFAULTS = {
  inboundPorts: '*',
  inboundListenerPort: 15006,
  outboundPorts: '80',
  outboundListenerPort: 15001,
  /** Istio's choice too, so that images and policies written for one fit the other. */
  proxyUid: 1337,
} as const;

export type CaptureParse = { ok: true; value: CaptureOptions } | { ok: false; setting: keyof CaptureSettings; error: string };

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function port(text: string): Parsed<number> {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  return n >= 1 && n <= 65535 ? { ok: true, value: n } : { ok: false, error: `"${text}" is not a port from 1 to 65535` };
}

/** Comma-separated items, blanks around them ignored; an empty text is an empty list. */
function items(text: string): string[] {
  return text.trim() === '' ? [] : text.split(',').map((s) => s.trim());
}

function list<T>(text: string, parse: (item: string) => Parsed<T>, key: (value: T) => string): Parsed<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  for (const item of items(text)) {
    const parsed = parse(item);
    if (!parsed.ok) return parsed;
    if (seen.has(key(parsed.value))) return { ok: false, error: `"${item}" is listed twice` };
    seen.add(key(parsed.value));
    out.push(parsed.value);
  }
  return { ok: true, value: out };
}

function portList(text: string): Parsed<number[]> {
  return list(text, port, String);
}

/**
 * `none`, or a list of `PORT[:LISTENER]` (that app port to that listener) and at most one `*[:LISTENER]` (every
 * other port to that listener); a listener not given is 15006.
 */
export function parseInboundPorts(text: string): Parsed<InboundCapture> {
  if (text.trim() === 'none') return { ok: true, value: { mappings: [] } };
  const items = list(
    text,
    (item): Parsed<{ port: number | '*'; listener: number }> => {
      const [app, listener, extra] = item.split(':');
      if (extra !== undefined) return { ok: false, error: `"${item}" is not PORT, PORT:LISTENER, * or *:LISTENER` };
      const appPort = app === '*' ? { ok: true as const, value: '*' as const } : port(app!);
      if (!appPort.ok) return appPort;
      const listenerPort = listener === undefined ? { ok: true as const, value: CAPTURE_DEFAULTS.inboundListenerPort } : port(listener.trim());
      return listenerPort.ok ? { ok: true, value: { port: appPort.value, listener: listenerPort.value } } : listenerPort;
    },
    (m) => String(m.port),
  );
  if (!items.ok) return items;
  if (items.value.length === 0) return { ok: false, error: 'give "*", "none" or a list of PORT[:LISTENER]' };
  const mappings = items.value.filter((m): m is PortMapping => m.port !== '*');
  const others = items.value.find((m) => m.port === '*')?.listener;
  return { ok: true, value: others === undefined ? { mappings } : { mappings, others } };
}

/** `*` (every port), `none`, or `PORT,...`. */
export function parseOutboundPorts(text: string): Parsed<OutboundCapture> {
  if (text.trim() === '*') return { ok: true, value: { kind: 'all' } };
  if (text.trim() === 'none') return { ok: true, value: { kind: 'ports', ports: [] } };
  const ports = portList(text);
  if (!ports.ok) return ports;
  if (ports.value.length === 0) return { ok: false, error: 'give "*", "none" or a list of ports' };
  return { ok: true, value: { kind: 'ports', ports: ports.value } };
}

function cidr(text: string): Parsed<Cidr> {
  const [address, prefix, extra] = text.split('/');
  const version = isIP(address ?? '');
  const max = version === 6 ? 128 : 32;
  const fail = { ok: false as const, error: `"${text}" is not an IPv4 or IPv6 CIDR block (ADDRESS/PREFIX)` };
  if (version === 0 || extra !== undefined) return fail;
  if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max)) return fail;
  return { ok: true, value: { family: version === 6 ? 'ipv6' : 'ipv4', text: prefix === undefined ? `${address}/${max}` : text } };
}

function uid(text: string): Parsed<number> {
  const n = /^\d{1,10}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  // 0 would exempt every process running as root from capture; 2^32-1 is "no user" to the kernel.
  if (n === 0) return { ok: false, error: 'UID 0 would exempt every root process from capture; run the sidecar as a UID of its own' };
  if (!(n >= 1 && n < 2 ** 32 - 1)) return { ok: false, error: `"${text}" is not a UID` };
  return { ok: true, value: n };
}

/** Every setting parsed and checked against the others; the first problem names its setting. */
export function parseCaptureSettings(settings: CaptureSettings): CaptureParse {
  const fail = (setting: keyof CaptureSettings, error: string): CaptureParse => ({ ok: false, setting, error });
  const inbound = parseInboundPorts(settings.inboundPorts ?? CAPTURE_DEFAULTS.inboundPorts);
  if (!inbound.ok) return fail('inboundPorts', inbound.error);
  const excludeInbound = portList(settings.excludeInboundPorts ?? '');
  if (!excludeInbound.ok) return fail('excludeInboundPorts', excludeInbound.error);
  const outbound = parseOutboundPorts(settings.outboundPorts ?? CAPTURE_DEFAULTS.outboundPorts);
  if (!outbound.ok) return fail('outboundPorts', outbound.error);
  const outboundListener = settings.outboundListenerPort === undefined ? { ok: true as const, value: CAPTURE_DEFAULTS.outboundListenerPort } : port(settings.outboundListenerPort.trim());
  if (!outboundListener.ok) return fail('outboundListenerPort', outboundListener.error);
  const cidrs = list(settings.excludeOutboundCidrs ?? '', cidr, (c) => c.text);
  if (!cidrs.ok) return fail('excludeOutboundCidrs', cidrs.error);
  const proxyUid = settings.proxyUid === undefined ? { ok: true as const, value: CAPTURE_DEFAULTS.proxyUid } : uid(settings.proxyUid);
  if (!proxyUid.ok) return fail('proxyUid', proxyUid.error);

  const both = inbound.value.mappings.find((m) => excludeInbound.value.includes(m.port));
  if (both) return fail('excludeInboundPorts', `port ${both.port} is also listed to be captured`);
  return {
    ok: true,
    value: {
      inbound: inbound.value,
      excludeInboundPorts: excludeInbound.value,
      outbound: outbound.value,
      outboundListenerPort: outboundListener.value,
      excludeOutboundCidrs: cidrs.value,
      proxyUid: proxyUid.value,
    },
  };
}

/** Whether an inbound connection to `port` is redirected to the sidecar. */
export function capturesInboundPort(options: CaptureOptions, port: number): boolean {
  if (options.excludeInboundPorts.includes(port)) return false;
  return options.inbound.others !== undefined || options.inbound.mappings.some((m) => m.port === port);
}

/** The options as `meshward capture` flags, every one spelled out, so that a pod's spec shows what it gets. */
export function captureFlags(options: CaptureOptions): string[] {
  const { inbound, outbound } = options;
  const inboundItems = [...inbound.mappings.map((m) => `${m.port}:${m.listener}`), ...(inbound.others === undefined ? [] : [`*:${inbound.others}`])];
  const outboundText = outbound.kind === 'all' ? '*' : outbound.ports.length === 0 ? 'none' : outbound.ports.join(',');
  return [
    '--inbound-ports', inboundItems.length === 0 ? 'none' : inboundItems.join(','),
    ...(options.excludeInboundPorts.length > 0 ? ['--exclude-inbound-ports', options.excludeInboundPorts.join(',')] : []),
    '--outbound-ports', outboundText,
    '--outbound-listener-port', String(options.outboundListenerPort),
    ...(options.excludeOutboundCidrs.length > 0 ? ['--exclude-outbound-cidrs', options.excludeOutboundCidrs.map((c) => c.text).join(',')] : []),
    '--proxy-uid', String(options.proxyUid),
  ];
}

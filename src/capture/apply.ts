import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { backendNamed, BACKENDS, presenceCommand, presentBackends, type Backend, type BackendName } from './backends.js';
import { isEmpty, parseIptablesSave } from './iptables-rules.js';
import type { Family } from './options.js';
import { cleanPlan, installPlan, undoPlan, type IptablesParts, type Transaction } from './plan.js';
import type { RuleSet } from './rule-set.js';
import { familyNames } from './summary.js';

// The thin edge of capture: finds the back ends, reads what meshward has installed, and runs the plan's
// transactions. Every failure is a CaptureError whose message says what to do.

export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureError';
  }
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input = ''): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: err.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    // A command that fails before reading its input closes the pipe; its exit status says why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The first lines of a command's complaint, on one line. */
function reason(result: CommandResult): string {
  const text = (result.stderr.trim() || result.stdout.trim() || `exit status ${result.code}`).split('\n').slice(0, 2).join(' ');
  return /permission denied|operation not permitted/i.test(text) ? `${text} (capture needs the NET_ADMIN and NET_RAW capabilities)` : text;
}

// CAP_NET_ADMIN, from linux/capability.h.
const CAP_NET_ADMIN = 12n;

function requireNetAdmin(): void {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (effective !== undefined && (BigInt(`0x${effective}`) >> CAP_NET_ADMIN) & 1n) return;
  throw new CaptureError(
    'capture needs the NET_ADMIN capability in the pod\'s network namespace, and this process lacks it: run it as root, or give the container NET_ADMIN and NET_RAW (meshward inject does, for the meshward-init container); nothing was changed',
  );
}

/** IPv6 rules too wherever the kernel has IPv6; without it there is no IPv6 traffic to capture. */
export function ipFamilies(): Family[] {
  return existsSync('/proc/net/if_inet6') ? ['ipv4', 'ipv6'] : ['ipv4'];
}

function noBackend(): CaptureError {
  const commands = BACKENDS.map(presenceCommand).join(', ');
  return new CaptureError(`no packet-filter back end found: capture needs iptables (nft or legacy) or nft; none of ${commands} is on the PATH; nothing was changed`);
}

/** The back end to use: the one named, or the first present. */
function selectable(forced: BackendName | undefined): Backend[] {
  const present = presentBackends(onPath);
  if (forced === undefined) {
    if (present.length === 0) throw noBackend();
    return present;
  }
  const backend = backendNamed(forced)!;
  if (!onPath(presenceCommand(backend))) throw new CaptureError(`--backend ${forced}: ${presenceCommand(backend)} is not on the PATH; nothing was changed`);
  if (!present.includes(backend)) throw new CaptureError(`--backend iptables: plain iptables is iptables-nft or iptables-legacy here; name that one`);
  return [backend, ...present.filter((b) => b !== backend)];
}

type Probe = { backend: Backend; ok: true; holds: boolean; parts: IptablesParts } | { backend: Backend; ok: false; reason: string };

/** Whether the back end works here, and what of meshward's it holds. */
async function probe(backend: Backend, families: Family[]): Promise<Probe> {
  if (backend.kind === 'nft') {
    const r = await run(backend.command, ['list', 'tables']);
    if (r.code !== 0) return { backend, ok: false, reason: reason(r) };
    return { backend, ok: true, holds: /^table inet meshward$/m.test(r.stdout), parts: {} };
  }
  const parts: IptablesParts = {};
  for (const family of families) {
    // Without -t: a table that does not exist is left so (`-t nat` would make an empty legacy nat table).
    const r = await run(backend.commands[family].save, []);
    if (r.code !== 0) return { backend, ok: false, reason: `${backend.commands[family].save}: ${reason(r)}` };
    parts[family] = parseIptablesSave(r.stdout);
  }
  return { backend, ok: true, holds: Object.values(parts).some((p) => !isEmpty(p)), parts };
}

async function runAll(transactions: Transaction[]): Promise<{ done: Transaction[]; failed?: { transaction: Transaction; reason: string } }> {
  const done: Transaction[] = [];
  for (const transaction of transactions) {
    const r = await run(transaction.command, transaction.args, transaction.input);
    if (r.code !== 0) return { done, failed: { transaction, reason: reason(r) } };
    done.push(transaction);
  }
  return { done };
}

export interface Outcome {
  backend: BackendName;
  families: Family[];
}

/**
 * Installs the rule set with one back end: the one named, else the one that holds meshward's rules already, else
 * the first that works. Each transaction is atomic; should a later one fail (IPv6 after IPv4), the earlier ones are
 * undone, so that capture is never left half-way.
 */
export async function installCapture(ruleSet: RuleSet, forced?: BackendName): Promise<Outcome> {
  requireNetAdmin();
  const families = ipFamilies();
  const probes = await Promise.all(selectable(forced).map((b) => probe(b, families)));
  const holder = probes.find((p) => p.ok && p.holds);
  const chosen = forced !== undefined ? probes[0]! : (holder ?? probes.find((p) => p.ok));
  if (chosen === undefined) {
    throw new CaptureError(`no back end works here (${probes.map((p) => `${p.backend.name}: ${p.ok ? 'ok' : p.reason}`).join('; ')}); nothing was changed`);
  }
  if (!chosen.ok) throw new CaptureError(`${chosen.backend.name} cannot be used here: ${chosen.reason}; nothing was changed`);
  if (holder !== undefined && holder !== chosen) {
    throw new CaptureError(`meshward's rules are installed with ${holder.backend.name} already; remove them first (meshward capture --clean --backend ${holder.backend.name}); nothing was changed`);
  }
  const { done, failed } = await runAll(installPlan(chosen.backend, ruleSet, families, chosen.parts));
  if (failed) {
    const installed = done.flatMap((t) => t.families);
    const undone = installed.length === 0 ? undefined : await runAll(undoPlan(chosen.backend, ruleSet, installed, chosen.parts));
    const outcome =
      undone === undefined
        ? 'nothing was changed'
        : undone.failed === undefined
          ? `the ${familyNames(installed)} rules installed a moment before were put back as they were, so nothing was changed`
          : `putting back the ${familyNames(installed)} rules failed too (${undone.failed.reason}): run meshward capture --clean`;
    throw new CaptureError(`${failed.transaction.command} failed: ${failed.reason}; ${outcome}`);
  }
  return { backend: chosen.backend.name, families };
}

/** Removes meshward's chains, and the jumps to them, from every back end that holds them (or the one named). */
export async function removeCapture(forced?: BackendName): Promise<Outcome[]> {
  requireNetAdmin();
  const families = ipFamilies();
  const removed: Outcome[] = [];
  for (const backend of forced === undefined ? selectable(undefined) : [selectable(forced)[0]!]) {
    const found = await probe(backend, families);
    if (!found.ok) {
      if (forced !== undefined) throw new CaptureError(`${backend.name} cannot be used here: ${found.reason}`);
      continue;
    }
    if (!found.holds) continue;
    const { failed } = await runAll(cleanPlan(backend, families, found.parts));
    if (failed) throw new CaptureError(`${failed.transaction.command} failed: ${failed.reason}`);
    removed.push({ backend: backend.name, families });
  }
  return removed;
}

/** The back end a dry run shows: the one named, else the first present. Needs no privilege and reads no state. */
export function dryRunBackend(forced?: BackendName): Backend {
  if (forced !== undefined) return backendNamed(forced)!;
  const present = presentBackends(onPath);
  if (present.length === 0) throw noBackend();
  return present[0]!;
}

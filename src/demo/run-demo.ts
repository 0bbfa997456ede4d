import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { verifyChain } from '../telemetry/audit-chain.js';
import { captureLeftOut, captureRows, startCapturePods } from './capture-step.js';
import { CAPTURE_DEFAULTS } from '../capture/index.js';
import { componentLogs } from './component-logs.js';
import { apiKeyCall, corsPreflight, EdgeClient, maskedField, prepareEdge, schemaRejection } from './edge.js';
import { keepHints } from './keep-hints.js';
import { createCa, serveCa, startOrders, startWeb, SVID_TTL, TRUST_DOMAIN, type MeshContext } from './mesh.js';
import { formatElapsed, Progress } from './progress.js';
import { allowedRead, deniedRequest, forgedClientCertHeader, noClientCertificate, spiffeAwareCall, unroutedHost } from './requests.js';
import { Resources } from './resources.js';
import { rotationUnderTraffic } from './rotation.js';
import { renderTable, type Row } from './rows.js';

// `meshward demo`: the whole mesh on this machine, its promises checked and shown as a table, then everything
// stopped and the directory removed, on every path out (success, a failed check, an error, Ctrl-C / SIGTERM).

export interface DemoOptions {
  /** Leave the mesh running after the checks, until SIGINT or SIGTERM. */
  keep: boolean;
  /** Component logs on stderr instead of DIR/meshward.log. */
  verbose: boolean;
  /** How long to wait for an SVID renewal. */
  rotationTimeoutMs?: number;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function runDemo(options: DemoOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const started = performance.now();
  const signal = waitForSignal();
  const dir = await mkdtemp(join(tmpdir(), 'meshward-demo-'));
  const logs = componentLogs(options.verbose ? undefined : join(dir, 'meshward.log'));
  const resources = new Resources();
  const abort = new AbortController();
  const leftOut = await captureLeftOut();
  const progress = new Progress(leftOut === undefined ? 7 : 6, out);
  out.write(
    `meshward demo: a CA, two apps (web, orders) and their sidecars, web's with an edge for clients outside the mesh, on 127.0.0.1 only` +
      `${leftOut === undefined ? '; then, as root, the same two as pods in network namespaces of their own, with transparent capture' : ''}\n` +
      `working directory ${dir} (removed at the end${logs.file ? `; component logs in ${logs.file}` : ''})\n` +
      `${leftOut === undefined ? '' : `transparent capture left out: ${leftOut}\n`}\n`,
  );

  let code = 1;
  let failed = false;
  const run = mesh({ dir, resources, logs }, progress, { ...options, capture: leftOut === undefined }, abort.signal);
  // After Ctrl-C the step in progress may still be writing into the directory: it is waited for (bounded) below.
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  try {
    const outcome = await Promise.race([
      run.then((r) => ({ kind: 'done' as const, ...r })),
      signal.received.then((s) => ({ kind: 'signal' as const, signal: s })),
    ]);
    if (outcome.kind === 'signal') {
      progress.interrupt();
      out.write(`\n${outcome.signal}: stopping before the demo finished\n`);
      code = SIGNAL_EXIT[outcome.signal] ?? 1;
    } else {
      out.write(`\n${renderTable(outcome.rows)}\n\n`);
      const failures = outcome.rows.filter((r) => !r.ok);
      for (const f of failures) err.write(`meshward demo: FAIL ${f.request}: got "${f.result} | ${f.why}", expected ${f.expected}\n`);
      failed = failures.length > 0;
      if (!failed && options.keep) {
        out.write(outcome.hints);
        out.write(`\n${await signal.received}: stopping\n`);
      }
      code = failed ? 1 : 0;
    }
  } catch (e) {
    failed = true;
    err.write(`meshward demo: ${(e as Error).message}\n`);
  } finally {
    abort.abort();
    const problems = await resources.stopAll();
    await Promise.race([settled, new Promise((r) => setTimeout(r, 5000).unref())]);
    problems.push(...(await resources.stopAll()));
    for (const p of problems) err.write(`meshward demo: while stopping, ${p}\n`);
    logs.close();
    if (failed && logs.file) err.write(await logTail(logs.file));
    if (code === 0) {
      // Only now is the audit log complete: the sidecar closed it.
      const audit = await auditSummary(join(dir, 'audit.jsonl'));
      out.write(`${audit.text}\n`);
      if (!audit.ok) code = 1;
    }
    const removed = await rm(dir, { recursive: true, force: true, maxRetries: 3 }).then(
      () => true,
      (e: Error) => (err.write(`meshward demo: could not remove ${dir}: ${e.message}\n`), false),
    );
    if (!removed && code === 0) code = 1;
    signal.dispose();
    out.write(`stopped everything${removed ? ` and removed ${dir}` : ''} (${formatElapsed(performance.now() - started)} in all)\n`);
  }
  return code;
}

async function mesh(ctx: MeshContext, progress: Progress, options: DemoOptions & { capture: boolean }, abort: AbortSignal): Promise<{ rows: Row[]; hints: string }> {
  const created = await progress.step(`creating a CA for spiffe://${TRUST_DOMAIN}`, () => createCa(ctx));
  const ca = await progress.step('starting the CA (gRPC over TLS)', () => serveCa(ctx, created), (c) => c.address);
  const orders = await progress.step('starting the orders app and its sidecar (SVID from the CA, via a join token)', () => startOrders(ctx, ca), (o) => `inbound ${o.inbound}`);
  const edgeConfig = await prepareEdge(ctx, ca);
  const web = await progress.step(
    "starting web's sidecar (SVID from the CA, via a join token) with an edge for clients outside the mesh",
    () => startWeb(ctx, ca, orders.inbound, edgeConfig.ingress),
    (w) => `outbound ${w.outbound}, ingress ${w.ingress}`,
  );
  // web's app: plain HTTP to its own sidecar's outbound listener, as any app in the mesh talks.
  const webApp = new Pool(`http://${web.outbound}`, { connections: 8 });
  ctx.resources.add("web's app", () => webApp.close());
  const edge = await EdgeClient.open(web.ingress, ca, edgeConfig.apiKey);
  ctx.resources.add('the edge client', () => edge.close());
  const rows = await progress.step('sending requests: as web, without a certificate, with a forged header, with an SVID from the Workload API, through the edge', async () => [
    await allowedRead(webApp, orders),
    await deniedRequest(webApp, 'POST', '/api/orders'),
    await deniedRequest(webApp, 'GET', '/api/admin'),
    await unroutedHost(webApp),
    await noClientCertificate(ca, orders),
    await forgedClientCertHeader(webApp),
    await spiffeAwareCall(web, orders),
    await corsPreflight(edge),
    await apiKeyCall(edge),
    await schemaRejection(edge),
    await maskedField(edge),
  ]);
  const timeoutMs = options.rotationTimeoutMs ?? 25_000;
  rows.push(
    await progress.step(`waiting for an SVID renewal under traffic (SVIDs live ${SVID_TTL}; up to ${timeoutMs / 1000} s)`, () =>
      rotationUnderTraffic({ web: webApp, admins: { orders: orders.admin, web: web.admin }, timeoutMs, signal: abort }),
    ),
  );
  if (options.capture) {
    const label = `transparent capture: the same apps as two pods, unchanged, each sidecar as UID ${CAPTURE_DEFAULTS.proxyUid}`;
    const step = await progress.step(label, async () => {
      const pods = await startCapturePods(ctx, ca);
      try {
        return { rows: await captureRows(pods), pods: `pods ${pods.web.netns} ${pods.web.address}, ${pods.orders.netns} ${pods.orders.address}` };
      } finally {
        await pods.remove();
      }
    }, (s) => s.pods);
    rows.push(...step.rows);
  }
  return { rows, hints: keepHints(ctx.dir, ca, orders, web, edgeConfig.apiKey) };
}

/**
 * The first SIGINT/SIGTERM starts the clean-up; a second one exits at once, leaving the directory. The listeners
 * stay installed until the clean-up is over: with none left, a library's exit hook (signal-exit, used by
 * write-file-atomic while a CA file is being written) would re-raise the signal and end the process mid-clean-up.
 */
function waitForSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let first: ((s: NodeJS.Signals) => void) | undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => (first = resolve));
  const handler = (s: NodeJS.Signals) => {
    if (first === undefined) {
      process.stderr.write(`${s} again: exiting without cleaning up\n`);
      process.exit(SIGNAL_EXIT[s] ?? 1);
    }
    first(s);
    first = undefined;
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    received,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** The audit log's chain verified (as `meshward audit verify` does) once the sidecar has closed it. */
async function auditSummary(file: string): Promise<{ ok: boolean; text: string }> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return { ok: false, text: `audit log ${file}: missing` };
  const report = verifyChain([{ name: file, text }]);
  if (report.problem) return { ok: false, text: `audit log: ${report.problem.file}:${report.problem.line}: ${report.problem.reason}` };
  return { ok: true, text: `audit log: ${report.records} decisions, hash chain intact` };
}

async function logTail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
  return tail ? `the components' last log lines (${file}):\n${tail}\n` : '';
}

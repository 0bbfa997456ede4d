import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import writeFileAtomic from 'write-file-atomic';
import { parseDuration } from '../config/duration.js';
import {
  advanceCa,
  Authority,
  type WorkloadAttestor,
  CaError,
  createCaMetrics,
  defaultSigningWorkers,
  describeState,
  loadCa,
  initCa,
  makeCsr,
  mintJoinToken,
  PASSPHRASE_ENV,
  readState,
  readTokenMinting,
  rotateCa,
  startCaAdmin,
  startCaServer,
  type RunningCaServer,
} from '../ca/index.js';
import { parseSvidId } from '../spiffe/id.js';
import { createLogger } from '../telemetry/logger.js';
import { parseFlags, parseListenAddress, required, runSubcommand, UsageError, type Command } from './command.js';

const USAGE = `
Usage: meshward ca <subcommand> [options]

  init    --trust-domain TD --dir DIR [--ttl-days N] [--max-ttl 24h] [--force]
          [--import-cert FILE --import-key FILE [--import-bundle FILE]]
          Create a root CA in DIR (root.pem, root.key, bundle.pem), or plug in an existing CA.
  issue   --dir DIR --spiffe-id ID [--ttl 1h] [--dns NAME]... --out PREFIX [--audit FILE]
          Make a key here and issue an SVID for it: PREFIX.pem (leaf, then chain) and PREFIX.key.
  sign    --dir DIR --csr FILE --spiffe-id ID [--ttl 1h] [--audit FILE]
          Sign a CSR made by anyone; prints the PEM chain.
  token   --dir DIR --spiffe-id ID [--ttl 10m]
          Print a one-time join token bound to that SPIFFE ID.
  serve   --dir DIR --listen HOST:PORT [--dns NAME]... [--workers N] [--admin HOST:PORT] [--audit FILE]
          [--k8s-issuer URL [--k8s-jwks-url URL | --k8s-jwks-file FILE] [--k8s-api-ca FILE] [--k8s-token-file FILE]]
          Serve the CA over gRPC with TLS (proto/meshward/ca/v1/ca.proto). With --k8s-issuer it also accepts
          projected service-account tokens (audience meshward-ca) and issues spiffe://TD/ns/NAMESPACE/sa/NAME;
          keys come from the issuer's OIDC discovery unless a JWKS URL or file is given. CSR checks and signing
          run on N worker threads (default: one per CPU on three or more CPUs, else 0: on the main thread).
          --admin starts an admin listener (plain HTTP; keep it on loopback or a private network): /healthz,
          /readyz (200 once the CA serves and can sign), /metrics (Prometheus: meshward_ca_*) and /certs (the
          bundle, signing and serving certificates and the rotation stage; no key material). Port 0 picks a
          free port, logged as "admin" in the "CA listening" line.
  rotate  --dir DIR [--propagation-delay DURATION]
          Start a staged root rotation (default delay: the maximum SVID TTL).
  status  --dir DIR
          Show the trust domain, the roots and any rotation in progress.

Every request for an SVID (issue, sign and serve), issued or refused, is appended to a hash-chained audit log,
DIR/audit.log unless --audit FILE says otherwise (check it with \`meshward audit verify FILE\`). Commands that share
a log take turns under a lock, so they keep one chain. An issuance that cannot be recorded is refused.

The CA key is encrypted at rest when ${PASSPHRASE_ENV} is set.
`;

function passphrase(): string | undefined {
  return process.env[PASSPHRASE_ENV] || undefined;
}

function durationFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const d = parseDuration(value);
  if (!d.ok) throw new UsageError(`--${flag}: ${d.error}`);
  return d.seconds;
}

function spiffeIdFlag(value: string | undefined): string {
  const id = parseSvidId(required(value, 'spiffe-id'));
  if (!id.ok) throw new UsageError(`--spiffe-id: ${id.error}`);
  return id.value.uri;
}

function auditFlag(value: string | undefined): { auditPath?: string } {
  if (value === '') throw new UsageError('--audit needs a file name');
  return value === undefined ? {} : { auditPath: value };
}

async function withAuthority<T>(dir: string, audit: string | undefined, fn: (authority: Authority) => Promise<T>): Promise<T> {
  const authority = await Authority.open(dir, { ...auditFlag(audit), ...(passphrase() ? { passphrase: passphrase()! } : {}) });
  try {
    return await fn(authority);
  } catch (err) {
    if (err instanceof CaError) throw new Error(err.message);
    throw err;
  } finally {
    await authority.close();
  }
}

/** The Kubernetes attestor (src/kube), loaded only when asked for. */
async function kubernetesAttestor(
  trustDomain: string,
  opts: { issuer: string; keys: { discovery: true } | { jwksUrl: string } | { jwksFile: string }; fetch: { caPem?: string; bearerTokenFile?: string } },
): Promise<WorkloadAttestor> {
  const { SaTokenAttestor } = await import('../kube/index.js');
  return SaTokenAttestor.create({ trustDomain, issuer: opts.issuer, keys: opts.keys, fetch: opts.fetch });
}

const subcommands: Record<string, (argv: string[]) => Promise<number>> = {
  async init(argv) {
    const { values } = parseFlags(argv, {
      'trust-domain': { type: 'string' },
      dir: { type: 'string' },
      'ttl-days': { type: 'string' },
      'max-ttl': { type: 'string' },
      force: { type: 'boolean' },
      'import-cert': { type: 'string' },
      'import-key': { type: 'string' },
      'import-bundle': { type: 'string' },
    });
    const ttlDays = values['ttl-days'] === undefined ? 365 : Number(values['ttl-days']);
    if (!Number.isInteger(ttlDays) || ttlDays < 1) throw new UsageError(`--ttl-days: "${values['ttl-days']}" is not a whole number of days of at least 1`);
    if (Boolean(values['import-cert']) !== Boolean(values['import-key'])) throw new UsageError('--import-cert and --import-key go together');
    const material = await initCa({
      dir: required(values.dir, 'dir'),
      trustDomain: required(values['trust-domain'], 'trust-domain'),
      ttlDays,
      maxSvidTtlSeconds: durationFlag(values['max-ttl'], 'max-ttl', 24 * 3600),
      force: values.force ?? false,
      ...(passphrase() ? { passphrase: passphrase()! } : {}),
      ...(values['import-cert']
        ? { importFrom: { certFile: values['import-cert'], keyFile: values['import-key']!, ...(values['import-bundle'] ? { bundleFile: values['import-bundle'] } : {}) } }
        : {}),
    });
    const cert = new X509Certificate(material.signingCert);
    process.stdout.write(
      [
        `${material.state.imported ? 'imported CA' : 'root CA'} for spiffe://${material.state.trustDomain} in ${material.dir}`,
        `  serial     ${cert.serialNumber}`,
        `  not after  ${new Date(cert.validTo).toISOString()}`,
        `  key        ${material.dir}/root.key (0600${passphrase() ? ', encrypted' : `; set ${PASSPHRASE_ENV} to encrypt it`})`,
        `  bundle     ${material.dir}/bundle.pem (${material.bundle.length} root${material.bundle.length === 1 ? '' : 's'})`,
        '',
      ].join('\n'),
    );
    return 0;
  },

  async issue(argv) {
    const { values } = parseFlags(argv, {
      dir: { type: 'string' },
      'spiffe-id': { type: 'string' },
      ttl: { type: 'string' },
      dns: { type: 'string', multiple: true },
      out: { type: 'string' },
      audit: { type: 'string' },
    });
    const dir = required(values.dir, 'dir');
    const spiffeId = spiffeIdFlag(values['spiffe-id']);
    const out = required(values.out, 'out');
    const ttlSeconds = durationFlag(values.ttl, 'ttl', 3600);
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const svid = await withAuthority(dir, values.audit, async (authority) =>
      authority.sign({ csr: await makeCsr(key), spiffeId, ttlSeconds, ...(values.dns ? { dnsNames: values.dns } : {}) }, { method: 'operator' }),
    );
    await writeFileAtomic(`${out}.key`, key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    await writeFileAtomic(`${out}.pem`, svid.chainPem, { mode: 0o644 });
    if (svid.notice) process.stderr.write(`note: ${svid.notice}\n`);
    process.stdout.write(`issued ${svid.spiffeId}\n  serial     ${svid.serial}\n  not after  ${svid.notAfter.toISOString()}\n  files      ${out}.pem ${out}.key\n`);
    return 0;
  },

  async sign(argv) {
    const { values } = parseFlags(argv, { dir: { type: 'string' }, csr: { type: 'string' }, 'spiffe-id': { type: 'string' }, ttl: { type: 'string' }, audit: { type: 'string' } });
    const dir = required(values.dir, 'dir');
    const spiffeId = spiffeIdFlag(values['spiffe-id']);
    const csrFile = required(values.csr, 'csr');
    const csr = await readFile(csrFile).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`--csr ${csrFile}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
    });
    const ttlSeconds = durationFlag(values.ttl, 'ttl', 3600);
    const svid = await withAuthority(dir, values.audit, (authority) => authority.sign({ csr, spiffeId, ttlSeconds }, { method: 'operator' }));
    if (svid.notice) process.stderr.write(`note: ${svid.notice}\n`);
    process.stdout.write(svid.chainPem);
    return 0;
  },

  async token(argv) {
    const { values } = parseFlags(argv, { dir: { type: 'string' }, 'spiffe-id': { type: 'string' }, ttl: { type: 'string' } });
    const dir = required(values.dir, 'dir');
    const spiffeId = spiffeIdFlag(values['spiffe-id']);
    const ttlSeconds = durationFlag(values.ttl, 'ttl', 600);
    const { trustDomain, secret } = await readTokenMinting(dir);
    if (!spiffeId.startsWith(`spiffe://${trustDomain}/`)) {
      throw new Error(`--spiffe-id ${spiffeId} is not in this CA's trust domain "${trustDomain}"`);
    }
    process.stdout.write(`${await mintJoinToken(secret, { trustDomain, spiffeId, ttlSeconds })}\n`);
    return 0;
  },

  async serve(argv) {
    const { values } = parseFlags(argv, {
      dir: { type: 'string' },
      listen: { type: 'string' },
      dns: { type: 'string', multiple: true },
      'k8s-issuer': { type: 'string' },
      'k8s-jwks-url': { type: 'string' },
      'k8s-jwks-file': { type: 'string' },
      'k8s-api-ca': { type: 'string' },
      'k8s-token-file': { type: 'string' },
      workers: { type: 'string' },
      admin: { type: 'string' },
      audit: { type: 'string' },
    });
    const dir = required(values.dir, 'dir');
    const { host, port } = parseListenAddress(required(values.listen, 'listen'));
    const adminListen = values.admin === undefined ? undefined : parseListenAddress(values.admin, 'admin');
    const audit = auditFlag(values.audit);
    const signingWorkers = values.workers === undefined ? defaultSigningWorkers(availableParallelism()) : Number(values.workers);
    if (!Number.isInteger(signingWorkers) || signingWorkers < 0 || signingWorkers > 256) {
      throw new UsageError(`--workers: "${values.workers}" is not a whole number from 0 to 256`);
    }
    if (!values['k8s-issuer'] && (values['k8s-jwks-url'] || values['k8s-jwks-file'] || values['k8s-api-ca'] || values['k8s-token-file'])) {
      throw new UsageError('the --k8s-* options need --k8s-issuer');
    }
    if (values['k8s-jwks-url'] && values['k8s-jwks-file']) throw new UsageError('--k8s-jwks-url and --k8s-jwks-file are alternatives');
    const logger = createLogger('ca');
    const attestor = values['k8s-issuer']
      ? await kubernetesAttestor((await readState(dir)).trustDomain, {
          issuer: values['k8s-issuer'],
          keys: values['k8s-jwks-url'] ? { jwksUrl: values['k8s-jwks-url'] } : values['k8s-jwks-file'] ? { jwksFile: values['k8s-jwks-file'] } : { discovery: true },
          fetch: { ...(values['k8s-api-ca'] ? { caPem: await readFile(values['k8s-api-ca'], 'utf8') } : {}), ...(values['k8s-token-file'] ? { bearerTokenFile: values['k8s-token-file'] } : {}) },
        })
      : undefined;
    let server: RunningCaServer | undefined;
    const metrics = adminListen
      ? createCaMetrics({ signingNotAfter: () => authority.signingNotAfter, servingNotAfter: () => server?.serving().notAfter })
      : undefined;
    // Stopped in the reverse order of starting: the gRPC listener drains first (/readyz says 503 meanwhile), the
    // audit log is closed last. Also on a failed start, so that no listener or worker keeps the process alive.
    const started: (() => Promise<unknown>)[] = [];
    const stopAll = async () => {
      for (const stop of started.reverse()) await stop().catch((err: Error) => logger.error({ err: err.message }, 'stopping the CA'));
    };
    if (metrics) started.push(() => metrics.shutdown());
    let authority: Authority;
    try {
      authority = await Authority.open(dir, {
        logger,
        signingWorkers,
        ...audit,
        ...(metrics ? { onOutcome: metrics.recordSign } : {}),
        ...(attestor ? { attestor } : {}),
        ...(passphrase() ? { passphrase: passphrase()! } : {}),
      });
      started.push(() => authority.close());
      const admin = adminListen && metrics ? await startCaAdmin({ ...adminListen, authority, metrics, server: () => server }) : undefined;
      if (admin) started.push(() => admin.close());
      server = await startCaServer({
        authority,
        dir,
        host,
        port,
        logger,
        ...(metrics ? { onBundleChange: metrics.recordBundleChange } : {}),
        ...(passphrase() ? { passphrase: passphrase()! } : {}),
        ...(values.dns ? { dnsNames: values.dns } : {}),
      });
      started.push(server.close);
      logger.info({ address: server.address, ...(admin ? { admin: admin.address } : {}), audit: authority.auditPath, trustDomain: authority.trustDomain, signingWorkers }, 'CA listening');
    } catch (err) {
      await stopAll();
      throw err;
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'CA shutting down');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await stopAll();
    logger.flush();
    return 0;
  },

  async rotate(argv) {
    const { values } = parseFlags(argv, { dir: { type: 'string' }, 'propagation-delay': { type: 'string' } });
    const dir = required(values.dir, 'dir');
    const state = await readState(dir);
    const delay = durationFlag(values['propagation-delay'], 'propagation-delay', state.maxSvidTtlSeconds);
    const started = await rotateCa(dir, { propagationDelaySeconds: delay, ...(passphrase() ? { passphrase: passphrase()! } : {}) });
    process.stdout.write(
      [
        `root rotation started in ${dir}`,
        `  new root serial   ${started.nextRootSerial} (in bundle.pem now)`,
        `  signs from        ${started.activateAt.toISOString()}`,
        `  old root leaves   the bundle one maximum SVID TTL after that`,
        'A running `meshward ca serve` carries out each step; otherwise the next CA command does.',
        '',
      ].join('\n'),
    );
    return 0;
  },

  async status(argv) {
    const { values } = parseFlags(argv, { dir: { type: 'string' } });
    const dir = required(values.dir, 'dir');
    await advanceCa(dir);
    const material = await loadCa(dir, passphrase());
    const roots = material.bundle.map((pem) => new X509Certificate(pem));
    process.stdout.write(
      [
        `trust domain  ${material.state.trustDomain}${material.state.imported ? ' (imported CA)' : ''}`,
        `signing       ${new X509Certificate(material.signingCert).serialNumber} until ${new Date(new X509Certificate(material.signingCert).validTo).toISOString()}`,
        ...roots.map((r) => `bundle        ${r.serialNumber} until ${new Date(r.validTo).toISOString()}`),
        `max SVID TTL  ${material.state.maxSvidTtlSeconds}s`,
        describeState(material.state),
        '',
      ].join('\n'),
    );
    return 0;
  },
};

export const caCommand: Command = {
  name: 'ca',
  summary: 'run and manage the built-in certificate authority',
  usage: USAGE,
  run: (argv) => runSubcommand(argv, subcommands),
};

import { FieldError, loadSidecarConfig, type SidecarConfig } from '../config/index.js';
import { checkChains } from '../filters/index.js';
import { loadServerCertificate } from '../identity/index.js';
import { optimiseSooner, startSidecar, type Sidecar } from '../proxy/index.js';
import { createLogger } from '../telemetry/index.js';
import { parseFlags, required, type Command } from './command.js';

const usage = `
Usage: meshward sidecar --config FILE [--check-config]

Runs the sidecar: an inbound mTLS listener in front of the app, one per app port (every request authenticated by
its SPIFFE ID and authorized by the policy), an outbound listener that routes the app's requests by host over
mTLS, an ingress listener for clients outside the mesh (TLS, routed by path and method to outbound routes), and an
admin listener (/healthz, /readyz, /certs, /config). The config's format is in README.md ("The sidecar").

Options:
  --config FILE   the sidecar's YAML config; paths inside it are relative to its directory
  --check-config  check the config and exit (0: it is good; 1: every problem, named by its path): the schema, the
                  files it reads (the ingress certificate and key checked as a pair), the directories of its sockets
                  and the groups it names, and every listener's filters built as the sidecar would build them
                  (custom modules loaded, settings checked) and closed again; nothing listens and no identity is
                  fetched

With identity.ca, the join token is redeemed only after everything else has been checked and every listener bound,
and the SVID is kept in identity.ca.stateDir so that a restart within its life needs no token. A CA that is not up
yet is waited for (one log line per attempt) until identity.ca.startDeadline; /readyz answers 503 meanwhile.

SIGHUP reloads the policy (it is also reloaded when its file changes; an invalid change keeps the last good one).
SIGTERM or SIGINT drains: stop accepting, finish requests in flight (up to drainTimeout), exit 0.
`;

/** After drainTimeout, time for the last steps of a shutdown (closing the audit log, flushing traces). */
const SHUTDOWN_GRACE_MS = 5000;

export const sidecarCommand: Command = {
  name: 'sidecar',
  summary: 'run the mTLS sidecar (inbound and outbound listeners)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string' }, 'check-config': { type: 'boolean', default: false } });
    const configFile = required(values.config, 'config');
    const config = loadSidecarConfig(configFile);
    if (values['check-config']) return checkConfig(configFile, config);
    const logger = createLogger('sidecar', { level: config.log.level });
    logger.debug({ configFile, config }, 'config loaded');
    // Before the warm-up, so that what it runs is compiled by TurboFan before /readyz says ready.
    optimiseSooner();
    // SIGHUP is handled from before the start, which may wait minutes for the CA: by default it would end the
    // process. Until the sidecar is up there is nothing to reload (the policy file is watched from its loading).
    let sidecar: Sidecar | undefined;
    const reload = () => void sidecar?.reloadPolicy();
    process.on('SIGHUP', reload);
    try {
      sidecar = await startSidecar(config, logger).catch((err: unknown) => {
        throw err instanceof FieldError ? err.inFile(configFile) : err;
      });
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      process.off('SIGHUP', reload);
      logger.info({ signal }, 'draining');
      // The drain cuts every connection at drainTimeout; anything else that would hold the process past it (an
      // exporter that cannot flush, a handle nobody closed) must not keep a pod in Terminating until SIGKILL.
      const overrun = setTimeout(() => {
        logger.error({ drainTimeoutMs: config.drainTimeout, graceMs: SHUTDOWN_GRACE_MS }, 'shutdown overran the drain timeout; exiting now');
        logger.flush();
        process.exit(1);
      }, config.drainTimeout + SHUTDOWN_GRACE_MS);
      overrun.unref();
      await sidecar.close();
    } finally {
      process.off('SIGHUP', reload);
    }
    logger.info('stopped');
    logger.flush();
    return 0;
  },
};

async function checkConfig(configFile: string, config: SidecarConfig): Promise<number> {
  const chains = await checkChains(config, createLogger('sidecar', { level: 'warn' })).catch((err: unknown) => {
    throw err instanceof FieldError ? err.inFile(configFile) : err;
  });
  const certificate = config.ingress && (await loadServerCertificate(config.ingress.tls));
  if (certificate && !certificate.ok) throw new FieldError(['ingress', 'tls'], certificate.error).inFile(configFile);
  const listed = Object.entries(chains).map(([listener, names]) => `${listener}: ${names.join(' → ')}`);
  process.stdout.write(`${configFile}: OK${listed.length > 0 ? `; ${listed.join('; ')}` : ''}\n`);
  return 0;
}

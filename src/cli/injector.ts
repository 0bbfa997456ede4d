import { readFile } from 'node:fs/promises';
import { startWebhookServer, type WebhookTls } from '../kube/index.js';
import { createLogger } from '../telemetry/index.js';
import { parseFlags, parseListenAddress, required, type Command } from './command.js';
import { INJECT_FLAGS, INJECT_FLAGS_USAGE, injectOptionsFromFlags } from './inject-flags.js';

/** How often the serving certificate files are read again: cert-manager renews them in place in the Secret. */
const TLS_RELOAD_MS = 60_000;

const usage = `
Usage: meshward injector --listen HOST:PORT --tls-cert FILE --tls-key FILE [--trust-domain TD] [--ca-address HOST:PORT] [--image IMG]

Runs the Kubernetes mutating admission webhook: POST /mutate answers AdmissionReviews (admission.k8s.io/v1) for
pod creation with a JSONPatch that adds the meshward sidecar, exactly as \`meshward inject\` would. GET /healthz
answers probes. HTTPS only (TLS 1.2 or later), as the API server requires.

Options:
  --listen ADDR         HOST:PORT, or [IPv6]:PORT; port 0 picks a free port (logged as "listening")
  --tls-cert FILE       serving certificate (PEM), valid for the webhook Service's DNS name
  --tls-key FILE        its private key (PEM)${INJECT_FLAGS_USAGE}

The certificate and key are read again every ${TLS_RELOAD_MS / 1000} s and on SIGHUP; new connections use the new ones.
SIGTERM or SIGINT: stop accepting, finish requests in flight, exit 0.
`;

async function readTls(certFile: string, keyFile: string): Promise<WebhookTls> {
  const read = (file: string, flag: string) =>
    readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`${flag} ${file}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
    });
  const [cert, key] = await Promise.all([read(certFile, '--tls-cert'), read(keyFile, '--tls-key')]);
  return { cert, key };
}

export const injectorCommand: Command = {
  name: 'injector',
  summary: 'run the Kubernetes mutating admission webhook',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { listen: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, ...INJECT_FLAGS });
    const { host, port } = parseListenAddress(required(values.listen, 'listen'));
    const certFile = required(values['tls-cert'], 'tls-cert');
    const keyFile = required(values['tls-key'], 'tls-key');
    const inject = injectOptionsFromFlags(values);

    const logger = createLogger('injector');
    let tls = await readTls(certFile, keyFile);
    const server = await startWebhookServer({ host, port, tls, inject, logger });
    logger.info({ address: server.address, trustDomain: inject.trustDomain, caAddress: inject.caAddress, image: inject.image }, 'listening');

    // A failed read (a Secret mid-update) keeps the certificate in use; the next attempt tries again.
    const reload = async () => {
      try {
        const next = await readTls(certFile, keyFile);
        if (next.cert.equals(tls.cert) && next.key.equals(tls.key)) return;
        server.setTls(next);
        tls = next;
        logger.info('TLS certificate reloaded');
      } catch (err) {
        logger.warn({ reason: (err as Error).message }, 'TLS certificate not reloaded; keeping the current one');
      }
    };
    const onHup = () => void reload();
    const timer = setInterval(onHup, TLS_RELOAD_MS);
    process.on('SIGHUP', onHup);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    clearInterval(timer);
    process.off('SIGHUP', onHup);
    logger.info({ signal }, 'shutting down');
    await server.close();
    logger.info('stopped');
    logger.flush();
    return 0;
  },
};

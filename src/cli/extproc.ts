import { checkExtProcConfig, startExtProcServer } from '../extproc/index.js';
import { createLogger } from '../telemetry/index.js';
import { parseFlags, parseListenAddress, required, type Command } from './command.js';
import { servingTransport, transportUsage } from './grpc-transport.js';
import { serveUntilSignal } from './serve-until-signal.js';

/** How long SIGTERM waits for streams in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 5_000;

const usage = `
Usage: meshward extproc --config FILE --listen HOST:PORT [--tls-cert FILE --tls-key FILE --tls-ca FILE]
                        [--insecure-plaintext] [--admin HOST:PORT]
       meshward extproc --config FILE --check-config

Runs a listener's filter chain for Envoy, as its external processor (envoy.service.ext_proc.v3.ExternalProcessor/
Process), with grpc.health.v1.Health and server reflection, on one gRPC listener. Filters answer early with an
immediate response (CORS preflights, a missing API key, a schema rejection) or change the request and the response
(headers, masked fields). Envoy's ext_proc filter needs allow_mode_override: true for the filters that read bodies
(see deploy/envoy/envoy-extproc.yaml).

The config (YAML; paths inside it are relative to its directory):
  filters:                 a listener's filters: list, in the same format (docs/filters.md); after the header checks
                           and the limits, which every chain starts with
  limits:                  maxHeaderBytes (431 above it), maxBodyBytes (413 above it); connections and timeouts are
                           Envoy's to limit
  headersWithUnderscores:  drop (the default), reject or allow, as on a listener

Options:
  --config FILE     the config; the files its filters name are watched and read again on SIGHUP (a bad change keeps
                    the last good one)
  --check-config    check the config and exit (0: it is good, and the chain's filters are printed; 1: every problem,
                    named by its path): the filters are built as the server would build them, then closed again
  --listen ADDR     HOST:PORT, or [IPv6]:PORT; port 0 picks a free port (logged as "listening")
${transportUsage('the requests')}
  --admin ADDR      an admin listener (plain HTTP; keep it on loopback or a private network): /healthz, /readyz
                    (503 once shutting down) and /metrics (Prometheus text, the sidecar's series with direction
                    "extproc"); port 0 picks a free port

Who called: the principal is the URI SAN of the client certificate Envoy verified (request attribute
connection.uri_san_peer_certificate), when it is a SPIFFE ID; the source address is source.address. Without them,
the request has no principal and no source address (and filters that need one refuse it).

SIGTERM or SIGINT: stop accepting, finish streams in flight (up to ${SHUTDOWN_GRACE_MS / 1000} s), exit 0.
`;

export const extprocCommand: Command = {
  name: 'extproc',
  summary: "run a listener's filter chain for Envoy (ext_proc)",
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      config: { type: 'string' },
      'check-config': { type: 'boolean', default: false },
      listen: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      admin: { type: 'string' },
      'insecure-plaintext': { type: 'boolean', default: false },
    });
    const configFile = required(values.config, 'config');
    if (values['check-config']) {
      const filters = await checkExtProcConfig(configFile, createLogger('extproc', { level: 'warn' }));
      process.stdout.write(`${configFile}: OK; ${filters.join(' → ')}\n`);
      return 0;
    }
    const { host, port } = parseListenAddress(required(values.listen, 'listen'));
    const transport = servingTransport(host, values, 'ext_proc');
    const admin = values.admin === undefined ? undefined : parseListenAddress(values.admin, 'admin');

    const logger = createLogger('extproc');
    const server = await startExtProcServer({ configFile, host, port, logger, ...(transport.tls ? { tls: transport.tls } : {}), ...(admin ? { admin } : {}) });
    transport.warn(logger, server.address);
    return serveUntilSignal(server, () => void server.reload(), logger, SHUTDOWN_GRACE_MS);
  },
};

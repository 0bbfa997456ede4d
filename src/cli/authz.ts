import { startExtAuthzServer } from '../authz/ext-authz/index.js';
import { createLogger } from '../telemetry/index.js';
import { parseFlags, parseListenAddress, required, UsageError, type Command } from './command.js';
import { servingTransport, transportUsage } from './grpc-transport.js';
import { serveUntilSignal } from './serve-until-signal.js';

/** How long SIGTERM waits for calls in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 5_000;

const usage = `
Usage: meshward authz --policy FILE --listen HOST:PORT [--tls-cert FILE --tls-key FILE --tls-ca FILE]
                      [--insecure-plaintext] [--admin HOST:PORT] [--audit FILE]

Serves the policy as Envoy's external authorization service (envoy.service.auth.v3.Authorization/Check),
with grpc.health.v1.Health and server reflection, on one gRPC listener.

Options:
  --policy FILE     the policy file; watched, and reloaded on SIGHUP (an invalid change keeps the last good one)
  --listen ADDR     HOST:PORT, or [IPv6]:PORT; port 0 picks a free port (logged as "listening")
${transportUsage('the Checks')}
  --admin ADDR      an admin listener (plain HTTP; keep it on loopback or a private network): /healthz, /readyz
                    (503 once shutting down) and /metrics (Prometheus text, the sidecar's series with direction
                    "check"); port 0 picks a free port (logged as "admin" in the "listening" line)
  --audit FILE      append one hash-chained record per Check answered (the sidecar's "authz" records;
                    check them with \`meshward audit verify FILE\`); none without this flag

SIGTERM or SIGINT: stop accepting, finish calls in flight (up to ${SHUTDOWN_GRACE_MS / 1000} s), write what is left
of the audit log, exit 0.
`;

export const authzCommand: Command = {
  name: 'authz',
  summary: 'serve the policy engine as an Envoy ext_authz gRPC service',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      policy: { type: 'string' },
      listen: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      admin: { type: 'string' },
      audit: { type: 'string' },
      'insecure-plaintext': { type: 'boolean', default: false },
    });
    const policyFile = required(values.policy, 'policy');
    const { host, port } = parseListenAddress(required(values.listen, 'listen'));
    const transport = servingTransport(host, values, 'Check');
    const admin = values.admin === undefined ? undefined : parseListenAddress(values.admin, 'admin');
    if (values.audit === '') throw new UsageError('--audit needs a file name');
    const audit = values.audit === undefined ? undefined : { path: values.audit };

    const logger = createLogger('authz');
    const server = await startExtAuthzServer({ policyFile, host, port, logger, tls: transport.tls, admin, audit });
    transport.warn(logger, server.address);
    return serveUntilSignal(server, () => void server.reloadPolicy(), logger, SHUTDOWN_GRACE_MS);
  },
};

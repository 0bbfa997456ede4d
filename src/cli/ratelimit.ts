import { isLoopbackHost, parseDuration } from '../config/index.js';
import { DEFAULT_STORE_TIMEOUT_MS, startRateLimitServer, type FailureMode } from '../ratelimit/index.js';
import { createLogger } from '../telemetry/index.js';
import { parseFlags, parseListenAddress, required, UsageError, type Command } from './command.js';
import { serveUntilSignal } from './serve-until-signal.js';

/** How long SIGTERM waits for calls in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 5_000;

const usage = `
Usage: meshward ratelimit --config FILE --listen HOST:PORT [--redis URL [--redis-password env:NAME|file:PATH]
                          [--redis-ca FILE] [--redis-timeout DURATION]] [--failure-mode allow|deny]
                          [--admin HOST:PORT] [--insecure-plaintext]

Serves global rate limits as Envoy's rate limit service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit),
with grpc.health.v1.Health and server reflection, on one gRPC listener. The config is envoyproxy/ratelimit's format
(domain, descriptors, rate_limit: { unit, requests_per_unit }, unlimited, shadow_mode, replaces); counts are fixed
windows kept in Redis, so that every replica of this service counts into one total.

Options:
  --config FILE       the rate-limit config (several domains: YAML documents separated by ---); watched, and
                      reloaded on SIGHUP (an invalid change keeps the last good one)
  --listen ADDR       HOST:PORT, or [IPv6]:PORT; port 0 picks a free port (logged as "listening")
  --redis URL         redis://HOST:PORT[/DB], rediss://HOST:PORT (TLS), or a Redis Cluster:
                      redis://HOST:PORT[,HOST:PORT...]?cluster=true (seed nodes). A user may come before @; a password
                      may not (see --redis-password). Without --redis, counts are kept in this process's memory: each
                      replica then counts alone
  --redis-password REF
                      env:NAME or file:PATH holding the Redis password (never the password itself)
  --redis-ca FILE     CA certificates (PEM) that a rediss:// server must chain to; the system's roots by default
  --redis-timeout DURATION
                      how long a count may take before the failure mode answers (default ${DEFAULT_STORE_TIMEOUT_MS}ms)
  --failure-mode MODE when Redis fails or is too slow: allow (the default, as envoyproxy/ratelimit) answers OK,
                      deny answers OVER_LIMIT. Either way a warning is logged and
                      meshward_ratelimit_store_errors_total counts it; counting resumes when Redis is back
  --admin ADDR        an admin listener (plain HTTP; keep it on loopback or a private network): /healthz, /readyz
                      and /metrics (Prometheus text)
  --insecure-plaintext
                      serve on an address other than loopback (the listener has no TLS: anyone on the path can read
                      the descriptors and forge the answers); without it only a loopback --listen starts

SIGTERM or SIGINT: stop accepting, finish calls in flight (up to ${SHUTDOWN_GRACE_MS / 1000} s), exit 0.
`;

export const ratelimitCommand: Command = {
  name: 'ratelimit',
  summary: 'serve global rate limits (Envoy RLS, envoyproxy/ratelimit config, counts in Redis)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      config: { type: 'string' },
      listen: { type: 'string' },
      redis: { type: 'string' },
      'redis-password': { type: 'string' },
      'redis-ca': { type: 'string' },
      'redis-timeout': { type: 'string' },
      'failure-mode': { type: 'string', default: 'allow' },
      admin: { type: 'string' },
      'insecure-plaintext': { type: 'boolean', default: false },
    });
    const configFile = required(values.config, 'config');
    const { host, port } = parseListenAddress(required(values.listen, 'listen'));
    if (!isLoopbackHost(host) && !values['insecure-plaintext']) {
      throw new UsageError(`--listen ${host} is not a loopback address, and this listener has no TLS: give --insecure-plaintext to serve there anyway`);
    }
    const failureMode = values['failure-mode'];
    if (failureMode !== 'allow' && failureMode !== 'deny') throw new UsageError(`--failure-mode must be allow or deny, not "${failureMode}"`);
    if (values.redis === undefined && (values['redis-password'] ?? values['redis-ca'] ?? values['redis-timeout']) !== undefined) {
      throw new UsageError('--redis-password, --redis-ca and --redis-timeout need --redis');
    }
    const admin = values.admin === undefined ? undefined : parseListenAddress(values.admin, 'admin');

    const logger = createLogger('ratelimit');
    if (values.redis === undefined) logger.warn('no --redis: counting in this process\'s memory; every replica of this service counts alone');
    const server = await startRateLimitServer({
      configFile,
      host,
      port,
      store: {
        ...(values.redis === undefined ? {} : { url: values.redis }),
        ...(values['redis-password'] === undefined ? {} : { password: values['redis-password'] }),
        ...(values['redis-ca'] === undefined ? {} : { caFile: values['redis-ca'] }),
        ...(values['redis-timeout'] === undefined ? {} : { timeoutMs: timeoutMs(values['redis-timeout']) }),
      },
      failureMode: failureMode satisfies FailureMode,
      logger,
      ...(admin ? { admin } : {}),
    });
    return serveUntilSignal(server, () => void server.reloadConfig(), logger, SHUTDOWN_GRACE_MS);
  },
};

function timeoutMs(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new UsageError(`--redis-timeout: ${parsed.error}`);
  return Math.max(1, Math.round(parsed.seconds * 1000));
}

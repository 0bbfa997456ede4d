import { isLoopbackHost } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { UsageError } from './command.js';

// How a gRPC service for Envoy (meshward authz, meshward extproc) is reached: mutual TLS from three files, or
// plaintext on loopback, or plaintext elsewhere only when the operator says --insecure-plaintext. `what` names what
// the service serves, for the refusal and the warning ("Check", "ext_proc").

/** The flags' lines of a command's usage; `calls` says what could be read and forged ("the Checks"). */
export function transportUsage(calls: string): string {
  return `  --tls-cert FILE   server certificate (PEM); with --tls-key and --tls-ca, serve mutual TLS (TLS 1.3):
  --tls-key FILE    server private key (PEM)
  --tls-ca FILE     CA bundle (PEM) that client certificates must chain to; clients without one are refused
  --insecure-plaintext
                    serve without TLS on an address other than loopback (127.0.0.0/8, ::1, localhost): anyone on
                    the path could read ${calls} and forge the answers. Without TLS flags and without this one,
                    only a loopback --listen starts (with a warning)`;
}

export interface TransportFlags {
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-ca'?: string;
  'insecure-plaintext'?: boolean;
}

export interface ServingTransport {
  tls: { certFile: string; keyFile: string; caFile: string } | undefined;
  /** Logs the warning plaintext deserves (nothing with TLS); call once the address is bound. */
  warn(logger: Logger, address: string): void;
}

export function servingTransport(host: string, values: TransportFlags, what: string): ServingTransport {
  const tls = tlsFlags(values['tls-cert'], values['tls-key'], values['tls-ca']);
  const loopback = isLoopbackHost(host);
  if (!tls && !loopback && !values['insecure-plaintext']) {
    throw new Error(
      `refusing to serve ${what} without TLS on ${host}, which is not a loopback address: anyone on the path could read the calls and forge the answers. ` +
        'Give --tls-cert, --tls-key and --tls-ca (mutual TLS), listen on loopback, or accept the risk with --insecure-plaintext',
    );
  }
  return {
    tls,
    warn(logger, address) {
      if (tls) return;
      logger.warn(
        { address },
        loopback
          ? `serving ${what} without TLS, on loopback: any process on this machine can call it; give --tls-cert, --tls-key and --tls-ca for mutual TLS`
          : `serving ${what} without TLS on a non-loopback address (--insecure-plaintext): anyone on the path can read the calls and forge the answers`,
      );
    },
  };
}

function tlsFlags(certFile?: string, keyFile?: string, caFile?: string) {
  const given = [certFile, keyFile, caFile].filter((f) => f !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3 || !certFile || !keyFile || !caFile) {
    throw new UsageError('mutual TLS needs all of --tls-cert, --tls-key and --tls-ca');
  }
  return { certFile, keyFile, caFile };
}

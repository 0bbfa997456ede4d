// A gRPC service's listener with mutual TLS from files (meshward authz, meshward extproc): the server's
// certificate, key and the CA its clients must chain to. A missing or unreadable file is named; a file OpenSSL
// refuses is said as such.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../telemetry/index.js';
import { GrpcHttp2Server } from './grpc-http2-server.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      throw new Error(`${file}: cannot read the ${what}: ${reason}`);
    }
  };
  const [cert, key, ca] = await Promise.all([
    read(files.certFile, 'server certificate (--tls-cert)'),
    read(files.keyFile, 'server key (--tls-key)'),
    read(files.caFile, 'client CA bundle (--tls-ca)'),
  ]);
  return { cert, key, ca };
}

/** The server, serving mutual TLS (TLS 1.3) when `tls` is given, plain HTTP/2 otherwise. */
export async function grpcServerOf(options: { logger: Logger; maxMessageBytes: number; tls?: TlsFiles }): Promise<GrpcHttp2Server> {
  const tls = options.tls ? await readTlsFiles(options.tls) : undefined;
  try {
    return new GrpcHttp2Server({ logger: options.logger, maxMessageBytes: options.maxMessageBytes, ...(tls ? { tls } : {}) });
  } catch (err) {
    // OpenSSL's own words (a key that does not match, a PEM that does not parse), with what it was about.
    throw new Error(`TLS configuration refused: ${(err as Error).message}`);
  }
}

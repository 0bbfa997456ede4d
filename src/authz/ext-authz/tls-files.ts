// Reads the server's certificate, key and client CA for mutual TLS; a missing or unreadable file is named.
import { readFile } from 'node:fs/promises';

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

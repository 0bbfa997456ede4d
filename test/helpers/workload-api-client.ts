// A SPIFFE Workload API client built from the specification's workload.proto (proto/spiffe/workload/), as
// go-spiffe's and java-spiffe's clients are: it sends the `workload.spiffe.io: true` security header unless told not to.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type Client, type ClientReadableStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { splitDerCertificates } from '../../src/spiffe/index.js';
import { REPO_ROOT } from './cli.js';

const workload = loadPackageDefinition(
  loadSync('spiffe/workload/workload.proto', { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(REPO_ROOT, 'proto')] }),
) as unknown as { SpiffeWorkloadAPI: ServiceClientConstructor };

export interface X509Svid {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
export interface X509SvidResponse {
  svids: X509Svid[];
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}
export interface X509BundlesResponse {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}

export type GrpcError = Error & { code: number; details: string };

export function workloadApiClient(target: string): Client {
  return new workload.SpiffeWorkloadAPI(target, credentials.createInsecure());
}

/** The metadata of a call: the security header with `value`, or none (null). */
export function securityHeader(value: string | null = 'true'): Metadata {
  const metadata = new Metadata();
  if (value !== null) metadata.set('workload.spiffe.io', value);
  return metadata;
}

/** A server stream of the X.509 profile, read one message at a time (each read bounded). */
export class MessageStream<T> {
  private readonly queued: T[] = [];
  private readonly waiting: Array<{ resolve: (m: T) => void; reject: (e: Error) => void }> = [];
  private failure: GrpcError | undefined;

  constructor(private readonly call: ClientReadableStream<T>) {
    call.on('data', (message: T) => {
      const next = this.waiting.shift();
      if (next) next.resolve(message);
      else this.queued.push(message);
    });
    call.on('error', (err: GrpcError) => {
      this.failure = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  next(timeoutMs = 15_000): Promise<T> {
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  close(): void {
    this.call.cancel();
  }
}

type StreamMethod = <T>(request: object, metadata: Metadata) => ClientReadableStream<T>;

export function fetchX509Svid(client: Client, metadata = securityHeader()): MessageStream<X509SvidResponse> {
  return new MessageStream((client as unknown as { FetchX509SVID: StreamMethod }).FetchX509SVID<X509SvidResponse>({}, metadata));
}

export function fetchX509Bundles(client: Client, metadata = securityHeader()): MessageStream<X509BundlesResponse> {
  return new MessageStream((client as unknown as { FetchX509Bundles: StreamMethod }).FetchX509Bundles<X509BundlesResponse>({}, metadata));
}

export function fetchJwtBundles(client: Client, metadata = securityHeader()): MessageStream<unknown> {
  return new MessageStream((client as unknown as { FetchJWTBundles: StreamMethod }).FetchJWTBundles<unknown>({}, metadata));
}

/** A unary JWT call; resolves with the error it ends with (or rejects if it answered). */
export function jwtCallError(client: Client, method: 'FetchJWTSVID' | 'ValidateJWTSVID', request: object, metadata = securityHeader()): Promise<GrpcError> {
  type Unary = (r: object, m: Metadata, o: object, cb: (e: GrpcError | null) => void) => void;
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, Unary>)[method]!.call(client, request, metadata, { deadline: Date.now() + 5_000 }, (err) =>
      err ? resolve(err) : reject(new Error(`${method} answered`)),
    ),
  );
}

/** Certificates given as ASN.1 DER concatenated (the Workload API's encoding). */
export function derCertificates(der: Buffer): X509Certificate[] {
  return splitDerCertificates(der).map((d) => new X509Certificate(d));
}

import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { svidIdentity } from '../spiffe/x509-svid.js';
import { CA_SERVER_PATH } from './grpc-server.js';
import { caService, type BundleMessage, type SignResponseMessage } from './proto.js';

// A client of the meshward CA. It trusts the server by the trust bundle and the CA's SPIFFE ID, never by a
// hostname. A client is fixed to one bundle and one identity: when either changes (a rotation, a renewal), make a
// new client; that is cheap and keeps every connection's trust explicit.

export interface CaClientOptions {
  /** host:port */
  address: string;
  trustDomain: string;
  /** PEM roots to verify the CA's serving certificate. */
  bundlePem: string;
  /** The SVID to present for renewal (PEM chain and key). */
  identity?: { certChainPem: string; keyPem: string };
}

export interface SignParams {
  csr: string | Buffer;
  joinToken?: string;
  ttlSeconds?: number;
  spiffeId?: string;
  deadlineMs?: number;
  /**
   * Request metadata. The CA's audit record carries a valid `x-request-id` and the trace id of a valid
   * `traceparent`, so the caller's logs and traces can name the call.
   */
  metadata?: Record<string, string>;
}

type CaStub = grpc.Client & {
  Sign(req: object, metadata: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: SignResponseMessage) => void): void;
  GetBundle(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: BundleMessage) => void): void;
  WatchBundle(req: object): grpc.ClientReadableStream<BundleMessage>;
};

export class CaClient {
  private readonly stub: CaStub;
  private readonly trustDomain: string;
  private readonly address: string;

  constructor(opts: CaClientOptions) {
    this.trustDomain = opts.trustDomain;
    this.address = opts.address;
    const expected = `spiffe://${opts.trustDomain}${CA_SERVER_PATH}`;
    const credentials = grpc.credentials.createSsl(
      Buffer.from(opts.bundlePem),
      opts.identity ? Buffer.from(opts.identity.keyPem) : null,
      opts.identity ? Buffer.from(opts.identity.certChainPem) : null,
      {
        checkServerIdentity: (_host, cert) => {
          const id = svidIdentity(cert.raw, opts.trustDomain);
          if (!id.ok) return new Error(`the CA's certificate is not an SVID: ${id.error}`);
          if (id.value.uri !== expected) return new Error(`the server is ${id.value.uri}, not the CA (${expected})`);
          return undefined;
        },
      },
    );
    const Client = caService().client;
    this.stub = new Client(opts.address, credentials, {
      // Identity is checked by SPIFFE ID above; the name only feeds SNI, which an IP address cannot carry.
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    }) as unknown as CaStub;
  }

  /** Resolves with the CA's answer once its leaf has been checked: an SVID of this trust domain, for the ID asked for. */
  sign(params: SignParams): Promise<SignResponseMessage> {
    return new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      for (const [key, value] of Object.entries(params.metadata ?? {})) metadata.set(key, value);
      this.stub.Sign(
        { csr: Buffer.from(params.csr), ttlSeconds: params.ttlSeconds ?? 0, joinToken: params.joinToken ?? '', spiffeId: params.spiffeId ?? '' },
        metadata,
        { deadline: Date.now() + (params.deadlineMs ?? 10_000) },
        (err, res) => {
          if (err) return reject(err);
          const problem = servedSvidProblem(res, this.trustDomain, params.spiffeId);
          if (problem) reject(new Error(`the CA at ${this.address} served an unusable SVID: ${problem}`));
          else resolve(res);
        },
      );
    });
  }

  getBundle(deadlineMs = 10_000): Promise<BundleMessage> {
    return new Promise((resolve, reject) => {
      this.stub.GetBundle({}, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  /**
   * Calls `onBundle` with the current bundle and every change, and `onError` once if the stream fails or ends
   * (not after the returned stop function is called).
   */
  watchBundle(onBundle: (bundle: BundleMessage) => void, onError?: (err: Error) => void): () => void {
    const stream = this.stub.WatchBundle({});
    let over = false;
    const finish = (err: Error) => {
      if (over) return;
      over = true;
      onError?.(err);
    };
    stream.on('data', onBundle);
    stream.on('error', (err: grpc.ServiceError) => (err.code === grpc.status.CANCELLED ? (over = true) : finish(err)));
    stream.on('end', () => finish(new Error('the CA ended the bundle stream')));
    return () => {
      over = true;
      stream.cancel();
    };
  }

  close(): void {
    this.stub.close();
  }
}

function servedSvidProblem(res: SignResponseMessage, trustDomain: string, asked: string | undefined): string | undefined {
  const leaf = res.certChain[0];
  if (leaf === undefined) return 'no certificate';
  const id = svidIdentity(Buffer.from(leaf), trustDomain);
  if (!id.ok) return id.error;
  if (id.value.uri !== res.spiffeId) return `the certificate is for ${id.value.uri}, the answer says ${res.spiffeId}`;
  if (asked && id.value.uri !== asked) return `it is for ${id.value.uri}, not ${asked} as asked`;
  return undefined;
}

/** Serial and expiry of the leaf in a PEM chain, for logs and status pages. */
export function leafSummary(chainPem: string): { serial: string; notAfter: Date } {
  const leaf = new X509Certificate(chainPem);
  return { serial: leaf.serialNumber, notAfter: new Date(leaf.validTo) };
}

import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { svidIdentity, pemToDerList } from '../spiffe/x509-svid.js';
import { RotatingServerCredentials } from '../identity/rotating-server-credentials.js';
import { advanceCa, loadCa, stateVersion } from './ca-directory.js';
import { CaError, type CaErrorCode } from './ca-error.js';
import { makeCsr } from './csr-make.js';
import { Authority, type Caller } from './authority.js';
import { caService, type BundleMessage, type SignRequestMessage, type SignResponseMessage } from './proto.js';

// The CA over gRPC with TLS. Its serving certificate is an SVID from its own root, renewed at half-life and
// re-issued when the signing root changes. A 1 s tick applies due rotation steps and picks up changes other
// commands (`meshward ca rotate`) make to the directory; every bundle change is pushed to WatchBundle streams.

export const CA_SERVER_PATH = '/meshward/ca';

const STATUS: Record<CaErrorCode, grpc.status> = {
  unauthenticated: grpc.status.UNAUTHENTICATED,
  permission_denied: grpc.status.PERMISSION_DENIED,
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  internal: grpc.status.INTERNAL,
};

export interface CaServerOptions {
  authority: Authority;
  dir: string;
  listen: string;
  passphrase?: string;
  logger: Logger;
  /** DNS SANs on the serving certificate, for clients that check a hostname (default: localhost). */
  dnsNames?: string[];
  tickMs?: number;
}

export interface RunningCaServer {
  address: string;
  close(): Promise<void>;
}

export async function startCaServer(opts: CaServerOptions): Promise<RunningCaServer> {
  const { authority, logger } = opts;
  const servingKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const servingKeyPem = servingKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const servingId = `spiffe://${authority.trustDomain}${CA_SERVER_PATH}`;
  let bundleSequence = 1;
  let serving = { chain: '', issuedAt: 0, notAfter: 0 };

  const renewServingCert = async () => {
    const svid = await authority.sign(
      { csr: await makeCsr(servingKey), spiffeId: servingId, dnsNames: opts.dnsNames ?? ['localhost'], ttlSeconds: Math.min(3600, authority.maxSvidTtlSeconds) },
      { method: 'operator' },
    );
    serving = { chain: svid.chainPem, issuedAt: Date.now(), notAfter: svid.notAfter.getTime() };
  };
  const tlsMaterial = () => ({ key: servingKeyPem, cert: serving.chain, ca: authority.bundle.join('') });
  await renewServingCert();
  const credentials = new RotatingServerCredentials(tlsMaterial(), { requireClientCertificate: false });

  // Built once per bundle change, not per response: parsing the roots again for every Sign costs ~6% of the CA's CPU.
  let cachedBundle: BundleMessage | undefined;
  const bundleMessage = (): BundleMessage =>
    (cachedBundle ??= {
      trustDomain: authority.trustDomain,
      x509Authorities: authority.bundle.flatMap(pemToDerList),
      pem: authority.bundle.join(''),
      sequence: bundleSequence,
    });
  const watchers = new Set<grpc.ServerWritableStream<unknown, BundleMessage>>();

  const peerIds = new PeerIdentityCache(authority.trustDomain);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 });
  server.addService(caService().service, {
    Sign: (call: grpc.ServerUnaryCall<SignRequestMessage, SignResponseMessage>, callback: grpc.sendUnaryData<SignResponseMessage>) => {
      const caller = callerOf(call, peerIds);
      if ('refusal' in caller) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: caller.refusal });
        return;
      }
      const req = call.request;
      authority
        .sign({ csr: req.csr, ...(req.ttlSeconds ? { ttlSeconds: req.ttlSeconds } : {}), ...(req.spiffeId ? { spiffeId: req.spiffeId } : {}) }, caller)
        .then(
          (svid) =>
            callback(null, {
              spiffeId: svid.spiffeId,
              certChain: svid.chain,
              certChainPem: svid.chainPem,
              bundle: bundleMessage(),
              serial: svid.serial,
              notAfterUnix: Math.floor(svid.notAfter.getTime() / 1000),
              notice: svid.notice ?? '',
            }),
          (err: unknown) => {
            const e = err instanceof CaError ? err : new CaError('internal', 'internal error');
            callback({ code: STATUS[e.code], details: e.message });
          },
        );
    },
    GetBundle: (_call: grpc.ServerUnaryCall<unknown, BundleMessage>, callback: grpc.sendUnaryData<BundleMessage>) => {
      callback(null, bundleMessage());
    },
    WatchBundle: (call: grpc.ServerWritableStream<unknown, BundleMessage>) => {
      watchers.add(call);
      const drop = () => watchers.delete(call);
      call.on('cancelled', drop);
      call.on('close', drop);
      call.on('error', drop);
      call.write(bundleMessage());
    },
  });

  const address = await new Promise<string>((resolve, reject) => {
    server.bindAsync(opts.listen, credentials, (err, port) => {
      if (err) reject(new Error(`cannot listen on ${opts.listen}: ${err.message}`));
      else resolve(opts.listen.replace(/:\d+$/, `:${port}`));
    });
  });

  // Rotation steps, directory changes and serving-certificate renewal, serialised so they never overlap.
  let lastVersion = await stateVersion(opts.dir);
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const advanced = await advanceCa(opts.dir);
      const version = await stateVersion(opts.dir);
      if (advanced || version !== lastVersion) {
        lastVersion = version;
        const before = authority.signingCertificate;
        const previousBundle = authority.bundle.join('');
        authority.replaceMaterial(await loadCa(opts.dir, opts.passphrase));
        const rootChanged = !before.equals(authority.signingCertificate);
        if (authority.bundle.join('') !== previousBundle) {
          bundleSequence++;
          cachedBundle = undefined;
          const message = bundleMessage();
          for (const w of watchers) w.write(message);
          logger.info({ roots: authority.bundle.map((p) => new X509Certificate(p).serialNumber), sequence: bundleSequence }, 'trust bundle changed');
        }
        if (rootChanged) await renewServingCert();
        credentials.update(tlsMaterial());
        if (rootChanged) logger.info({ serial: new X509Certificate(authority.signingCertificate).serialNumber }, 'now signing with the new root');
      } else if (Date.now() >= serving.issuedAt + (serving.notAfter - serving.issuedAt) / 2) {
        await renewServingCert();
        credentials.update(tlsMaterial());
      }
    } catch (err) {
      logger.error({ err }, 'CA maintenance step failed; will retry');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), opts.tickMs ?? 1000);

  return {
    address,
    close: async () => {
      clearInterval(timer);
      for (const w of watchers) w.end();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

/** Who the caller is: a verified SVID presented over mTLS, a join token in the request, or nobody. */
function callerOf(call: grpc.ServerUnaryCall<SignRequestMessage, unknown>, peerIds: PeerIdentityCache): Caller | { refusal: string } {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (peer?.raw) {
    const id = peerIds.get(peer.raw);
    if (!id.ok) return { refusal: `the client certificate is not a usable SVID: ${id.error}` };
    return { method: 'svid', spiffeId: id.value.uri };
  }
  if (call.request.joinToken) return { method: 'join-token', token: call.request.joinToken };
  return { method: 'none' };
}

/**
 * svidIdentity of client certificates, remembered by their DER: a renewing client sends the same certificate on
 * every call of its connection, and parsing it with @peculiar/x509 each time was ~40% of the CA's CPU. The result
 * depends on the DER only (chain and validity are the TLS stack's, checked at the handshake).
 */
class PeerIdentityCache {
  private readonly ids = new Map<string, ReturnType<typeof svidIdentity>>();

  constructor(private readonly trustDomain: string) {}

  get(der: Buffer): ReturnType<typeof svidIdentity> {
    const key = der.toString('base64');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = svidIdentity(der, this.trustDomain);
      if (this.ids.size >= 10_000) this.ids.clear();
      this.ids.set(key, id);
    }
    return id;
  }
}

import { generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import type { Logger } from 'pino';
import { decodeRequest, GrpcHttp2Server, GrpcStatusError, unaryRoute, verifiedPeerCertificate } from '../grpc/index.js';
import { callerTraceId, requestIdOf, TRACEPARENT } from '../telemetry/index.js';
import { svidIdentity, pemToDerList } from '../spiffe/x509-svid.js';
import { advanceCa, loadCa, stateVersion } from './ca-directory.js';
import { CaError, type CaErrorCode } from './ca-error.js';
import { makeCsr } from './csr-make.js';
import { Authority, type Caller } from './authority.js';
import { CA_SERVICE, caService, caWireTypes, type BundleMessage, type SignRequestMessage } from './proto.js';

// The CA over gRPC with TLS. Sign and GetBundle run on meshward's lean HTTP/2 gRPC path (src/grpc) with
// protobufjs codecs: under load, grpc-js's per-call machinery cost the CA more CPU than the signing itself
// (bench/ca-sign.mjs). WatchBundle, a long-lived stream, goes through the grpc-js service adapter on the same port.
//
// The serving certificate is an SVID from the CA's own root, renewed at half-life and re-issued when the signing
// root changes. A 1 s tick applies due rotation steps and picks up changes other commands (`meshward ca rotate`)
// make to the directory; every bundle change is pushed to WatchBundle streams.
//
// Each Sign gets a request id, which ties its log lines to its audit record. Routes on the lean path see the stream
// but not its headers, so a caller's x-request-id and traceparent are not read (yet).

export const CA_SERVER_PATH = '/meshward/ca';

const STATUS: Record<CaErrorCode, number> = {
  unauthenticated: 16,
  permission_denied: 7,
  invalid_argument: 3,
  failed_precondition: 9,
  unavailable: 14,
  internal: 13,
};

export interface CaServerOptions {
  authority: Authority;
  dir: string;
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  passphrase?: string;
  logger: Logger;
  /** DNS SANs on the serving certificate, for clients that check a hostname (default: localhost). */
  dnsNames?: string[];
  tickMs?: number;
  /** Hears each change of the published bundle or of the signing root (metrics). */
  onBundleChange?: () => void;
}

export interface ServingSvid {
  spiffeId: string;
  serial: string;
  notAfter: Date;
}

export interface RunningCaServer {
  address: string;
  /** The CA's own serving certificate. */
  serving(): ServingSvid;
  /** Listening, not shutting down, and both the signing certificate and the serving SVID are within their validity. */
  ready(): boolean;
  close(): Promise<void>;
}

interface WatchCall {
  write(message: BundleMessage): void;
  end(): void;
  on(event: 'cancelled', listener: () => void): void;
}

export async function startCaServer(opts: CaServerOptions): Promise<RunningCaServer> {
  const { authority, logger } = opts;
  const types = caWireTypes();
  const servingKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const servingKeyPem = servingKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const servingId = `spiffe://${authority.trustDomain}${CA_SERVER_PATH}`;
  let serving = { chain: '', serial: '', issuedAt: 0, notAfter: 0 };

  const renewServingCert = async () => {
    const svid = await authority.sign(
      { csr: await makeCsr(servingKey), spiffeId: servingId, dnsNames: opts.dnsNames ?? ['localhost'], ttlSeconds: Math.min(3600, authority.maxSvidTtlSeconds) },
      { method: 'self', spiffeId: servingId },
      { requestId: randomUUID() },
    );
    serving = { chain: svid.chainPem, serial: svid.serial, issuedAt: Date.now(), notAfter: svid.notAfter.getTime() };
  };
  const tlsMaterial = () => ({ key: servingKeyPem, cert: serving.chain, ca: authority.bundle.join('') });
  await renewServingCert();

  // Built once per bundle change, not per response: parsing the roots again for every Sign cost ~6% of the CPU.
  let bundleSequence = 1;
  const encodeBundle = (message: BundleMessage) => ({ message, bytes: types.Bundle.encode(message).finish() });
  let bundle = encodeBundle(bundleMessageOf(authority, bundleSequence));
  const watchers = new Set<WatchCall>();
  const peerIds = new PeerIdentityCache(authority.trustDomain);

  const server = new GrpcHttp2Server({ logger, maxMessageBytes: 64 * 1024, tls: tlsMaterial(), requireClientCertificate: false });
  server.route(
    `/${CA_SERVICE}/Sign`,
    unaryRoute(async (bytes, stream, headers) => {
      const request = decodeRequest((b) => types.SignRequest.decode(b) as unknown as SignRequestMessage, bytes, 'SignRequest');
      const caller = callerOf(verifiedPeerCertificate(stream), request, peerIds, authority.attestsWorkloads);
      // The caller's request id and trace, when it sent them, tie this audit record to its own logs.
      const traceId = callerTraceId(headers[TRACEPARENT]);
      const context = { requestId: requestIdOf(headers['x-request-id']).id, ...(traceId !== undefined ? { traceId } : {}) };
      try {
        const svid = await authority.sign(
          { csr: Buffer.from(request.csr), ...(request.ttlSeconds ? { ttlSeconds: request.ttlSeconds } : {}), ...(request.spiffeId ? { spiffeId: request.spiffeId } : {}) },
          caller,
          context,
        );
        return types.SignResponse.encode({
          spiffeId: svid.spiffeId,
          certChain: svid.chain,
          certChainPem: svid.chainPem,
          bundle: bundle.message,
          serial: svid.serial,
          notAfterUnix: Math.floor(svid.notAfter.getTime() / 1000),
          notice: svid.notice ?? '',
        }).finish();
      } catch (err) {
        const e = err instanceof CaError ? err : new CaError('internal', 'internal error');
        throw new GrpcStatusError(STATUS[e.code], e.message);
      }
    }, 64 * 1024),
  );
  server.route(
    `/${CA_SERVICE}/GetBundle`,
    unaryRoute(async (bytes) => {
      decodeRequest((b) => types.GetBundleRequest.decode(b), bytes, 'GetBundleRequest');
      return bundle.bytes;
    }, 1024),
  );
  server.addService(caService().service as never, {
    WatchBundle: (call: WatchCall) => {
      watchers.add(call);
      call.on('cancelled', () => watchers.delete(call));
      call.write(bundle.message);
    },
  });

  const bound = await server.listen(opts.host, opts.port);
  let closing = false;
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;

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
        const bundleChanged = authority.bundle.join('') !== previousBundle;
        if (bundleChanged || rootChanged) opts.onBundleChange?.();
        if (bundleChanged) {
          bundleSequence++;
          bundle = encodeBundle(bundleMessageOf(authority, bundleSequence));
          for (const w of watchers) w.write(bundle.message);
          logger.info({ roots: authority.bundle.map((p) => new X509Certificate(p).serialNumber), sequence: bundleSequence }, 'trust bundle changed');
        }
        if (rootChanged) await renewServingCert();
        server.updateTls(tlsMaterial());
        if (rootChanged) logger.info({ serial: new X509Certificate(authority.signingCertificate).serialNumber }, 'now signing with the new root');
      } else if (Date.now() >= serving.issuedAt + (serving.notAfter - serving.issuedAt) / 2) {
        await renewServingCert();
        server.updateTls(tlsMaterial());
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
    serving: () => ({ spiffeId: servingId, serial: serving.serial, notAfter: new Date(serving.notAfter) }),
    ready: () => {
      const now = Date.now();
      return !closing && now < serving.notAfter && now < authority.signingNotAfter.getTime();
    },
    close: async () => {
      closing = true;
      clearInterval(timer);
      for (const w of watchers) w.end();
      await server.close(5000);
    },
  };
}

function bundleMessageOf(authority: Authority, sequence: number): BundleMessage {
  return { trustDomain: authority.trustDomain, x509Authorities: authority.bundle.flatMap(pemToDerList), pem: authority.bundle.join(''), sequence };
}

/** Who the caller is: a verified SVID presented over mTLS, a join token in the request, or nobody. */
function callerOf(peer: Buffer | undefined, request: SignRequestMessage, peerIds: PeerIdentityCache, attestsWorkloads: boolean): Caller {
  if (peer) {
    const id = peerIds.get(peer);
    if (!id.ok) return { method: 'unusable-svid', reason: id.error };
    return { method: 'svid', spiffeId: id.value.uri };
  }
  const token = request.joinToken;
  if (!token) return { method: 'none' };
  // Join tokens are HS256 (a secret only this CA holds); a platform token is signed by its issuer's key pair.
  return attestsWorkloads && tokenAlgorithm(token) !== 'HS256' ? { method: 'workload-token', token } : { method: 'join-token', token };
}

function tokenAlgorithm(token: string): string | undefined {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
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

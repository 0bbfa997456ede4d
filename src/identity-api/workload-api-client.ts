import { createPrivateKey } from 'node:crypto';
import { credentials, makeClientConstructor, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { derToPem, splitDerCertificates } from '../spiffe/index.js';
import { workloadApiService } from './protos.js';
import type { X509SvidResponse } from './workload-messages.js';

// What a SPIFFE-aware program does at start: read its X.509-SVID from a Workload API socket (FetchX509SVID, first
// message), with the specification's security header. The demo's SPIFFE-aware caller uses it.

export interface FetchedSvid {
  spiffeId: string;
  certChainPem: string;
  keyPem: string;
  bundlePem: string;
}

/** `target` as gRPC names it: unix:PATH. */
export function fetchX509Svid(target: string, timeoutMs = 5_000): Promise<FetchedSvid> {
  const WorkloadApiClient = makeClientConstructor(workloadApiService(), 'SpiffeWorkloadAPI');
  const client = new WorkloadApiClient(target, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('workload.spiffe.io', 'true');
  const call = (client as unknown as { FetchX509SVID(r: object, m: Metadata, o: object): ClientReadableStream<X509SvidResponse> }).FetchX509SVID({}, metadata, {
    deadline: Date.now() + timeoutMs,
  });
  return new Promise<FetchedSvid>((resolve, reject) => {
    call.once('data', (response: X509SvidResponse) => {
      const svid = response.svids[0];
      if (svid) {
        resolve({
          spiffeId: svid.spiffe_id,
          certChainPem: splitDerCertificates(svid.x509_svid).map(derToPem).join(''),
          keyPem: createPrivateKey({ key: svid.x509_svid_key, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string,
          bundlePem: splitDerCertificates(svid.bundle).map(derToPem).join(''),
        });
      } else {
        reject(new Error(`${target} sent no SVID`));
      }
      call.cancel();
    });
    call.once('error', reject);
  }).finally(() => client.close());
}

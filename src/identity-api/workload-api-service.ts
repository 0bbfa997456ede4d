import { status, type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { IdentitySnapshot } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';
import type { IdentityFeed } from './identity-feed.js';
import { x509BundlesResponse, x509SvidResponse } from './workload-messages.js';

// The SPIFFE Workload API (SpiffeWorkloadAPI): the X.509-SVID profile's two streams, each answered at once and
// again on every change of what it carries. The specification's security header must be on every call: it proves
// the call was made on purpose by a Workload API client (a browser or a proxy tricked into calling the socket cannot
// set it). The JWT-SVID profile is not served yet.

const SECURITY_HEADER = 'workload.spiffe.io';
const JWT_UNIMPLEMENTED = 'JWT-SVIDs are not served by meshward yet: use the X.509-SVID profile (FetchX509SVID, FetchX509Bundles)';

type Call = { metadata: Metadata };

export function workloadApiImplementation(feed: IdentityFeed, trustDomain: string, logger: Logger): UntypedServiceImplementation {
  /** Refuses a call without the security header, as the specification says; true when refused. */
  const refused = (call: Call, refuse: (error: { code: status; details: string }) => void): boolean => {
    if (call.metadata.get(SECURITY_HEADER)[0] === 'true') return false;
    logger.info({ header: SECURITY_HEADER }, 'Workload API: a call without the security header refused');
    refuse({ code: status.INVALID_ARGUMENT, details: `security header missing from request: set the metadata "${SECURITY_HEADER}: true"` });
    return true;
  };
  /** A server stream that sends `encode(identity)` now and whenever what it carries (named by `key`) changes. */
  const stream = (encode: (snapshot: IdentitySnapshot) => object, key: (snapshot: IdentitySnapshot, version: string) => string) => (call: ServerWritableStream<unknown, object>) => {
    if (refused(call, (error) => call.emit('error', error))) return;
    let sent: string | undefined;
    const unfollow = feed.follow((snapshot, version) => {
      if (key(snapshot, version) === sent) return;
      sent = key(snapshot, version);
      call.write(encode(snapshot));
    });
    call.on('cancelled', unfollow);
    call.on('error', unfollow);
  };
  const jwtUnary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    if (!refused(call, callback)) callback({ code: status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED });
  };
  return {
    FetchX509SVID: stream(x509SvidResponse, (_snapshot, version) => version),
    // A renewed SVID alone changes nothing here: only a new bundle is sent.
    FetchX509Bundles: stream((s) => x509BundlesResponse(s, trustDomain), (s) => s.bundlePem),
    FetchJWTSVID: jwtUnary,
    ValidateJWTSVID: jwtUnary,
    FetchJWTBundles(call: ServerWritableStream<unknown, unknown>) {
      if (!refused(call, (error) => call.emit('error', error))) call.emit('error', { code: status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED });
    },
  };
}

import { connect } from 'node:http2';

// A gRPC client for Sign as lean as the HTTP client the cfssl phase uses: one node:http2 session per renewing
// client (its SVID as the client certificate), each request message encoded and framed once up front, and per
// call only a stream, one write, and a check of `grpc-status`. It exists so that the load generator's own cost
// (grpc-js spends about three times the CPU per call that the cfssl client does, on the same 2 cores as the
// server) is not what separates the two servers. Nothing in meshward uses it.

/** A gRPC length-prefixed message: 0 (uncompressed), the length (4 bytes, big-endian), the bytes. */
function frame(bytes) {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

/**
 * @param {object} o
 * @param {string} o.address  HOST:PORT of `meshward ca serve`
 * @param {string} o.bundlePem  the trust bundle the server's certificate chains to
 * @param {{ certChainPem: string, keyPem: string }} o.identity  the client's current SVID (renewal over mTLS)
 * @param {string} o.path  the method's path, `/meshward.ca.v1.CertificateAuthority/Sign`
 * @param {Buffer[]} o.requests  SignRequest messages, already encoded
 */
export async function leanSignClient({ address, bundlePem, identity, path, requests }) {
  const framed = requests.map(frame);
  const session = connect(`https://${address}`, {
    ca: bundlePem,
    cert: identity.certChainPem,
    key: identity.keyPem,
    // The serving SVID names `localhost`; an IP address cannot go in SNI. The chain is verified against the bundle.
    servername: 'localhost',
    minVersion: 'TLSv1.3',
  });
  await new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  session.on('error', () => {});
  let next = 0;
  return {
    /** Resolves with the SignResponse's bytes once the CA answered with grpc-status 0; rejects with the status and message otherwise. */
    sign() {
      const body = framed[next++ % framed.length];
      return new Promise((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
        const chunks = [];
        // A refusal may come trailers-only: grpc-status in the response headers.
        stream.on('response', (headers) => {
          if (headers['grpc-status'] !== undefined) reject(new Error(`Sign: grpc-status ${headers['grpc-status']} ${decodeURIComponent(String(headers['grpc-message'] ?? ''))}`));
        });
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('trailers', (trailers) => {
          const status = trailers['grpc-status'];
          const body = Buffer.concat(chunks);
          // One length-prefixed message: 5 bytes of framing, then the message.
          if (status === '0' && body.length > 5) resolve(body.subarray(5));
          else reject(new Error(`Sign: grpc-status ${status} ${decodeURIComponent(String(trailers['grpc-message'] ?? ''))}`));
        });
        stream.on('error', reject);
        stream.on('close', () => reject(new Error('Sign: the stream closed without trailers')));
        stream.end(body);
      });
    },
    close() {
      session.close();
    },
  };
}

import { CaError } from './ca-error.js';
import { checkCsr, CsrError } from './csr-check.js';
import type { SignedLeaf, SvidSigner } from './svid-signer.js';

// The pure, CPU-bound part of issuing an SVID: check the CSR, check it asks for no identity but the one granted,
// sign. No state, no I/O, so it can run on any thread (signing-pool.ts runs it on worker threads); who may get
// which ID, token use and the issuance record stay with the Authority on the main thread.

export interface LeafJob {
  /** PKCS#10, PEM or DER, exactly as the caller sent it. */
  csr: Uint8Array | string;
  /** The ID the Authority granted this caller. */
  spiffeId: string;
  dnsNames?: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

/** Throws CaError: invalid_argument for a bad CSR, permission_denied for one that asks for another identity. */
export function issueLeaf(signer: SvidSigner, job: LeafJob): SignedLeaf {
  let csr;
  try {
    csr = checkCsr(typeof job.csr === 'string' ? job.csr : Buffer.from(job.csr.buffer, job.csr.byteOffset, job.csr.byteLength));
  } catch (err) {
    if (err instanceof CsrError) throw new CaError('invalid_argument', err.message);
    throw err;
  }
  if (csr.requestedUris.some((uri) => uri !== job.spiffeId)) {
    throw new CaError('permission_denied', `the CSR asks for ${csr.requestedUris.join(', ')} but this caller may only get ${job.spiffeId}`);
  }
  return signer.sign({
    spki: csr.spki,
    spiffeId: job.spiffeId,
    notBefore: job.notBefore,
    notAfter: job.notAfter,
    rsa: csr.keyType === 'rsa',
    ...(job.dnsNames ? { dnsNames: job.dnsNames } : {}),
  });
}

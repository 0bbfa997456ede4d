import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { validateTrustDomain } from '../spiffe/id.js';
import { issuerKeys, type IssuerFetchOptions, type KeySource } from './jwks-source.js';
import { identityFromClaims, type WorkloadIdentity } from './sa-token-claims.js';
import { CA_TOKEN_AUDIENCE } from './sidecar-layout.js';

// Workload attestation on Kubernetes: a pod proves who it is to the CA with its projected service-account token
// (audience meshward-ca). The token is verified offline against the cluster issuer's published keys, so the CA
// needs no TokenReview permission and no call to the API server per request; the price is that a token stays
// valid until it expires even if its pod is deleted, which the 10-minute projected lifetime bounds.

export interface SaTokenAttestorOptions {
  /** The trust domain of the SPIFFE IDs granted. */
  trustDomain: string;
  /** The cluster's service-account issuer (kube-apiserver --service-account-issuer), matched exactly against `iss`. */
  issuer: string;
  /** Where the issuer's public keys come from: its OIDC discovery document, a JWKS URL, or a JWKS file. */
  keys: KeySource;
  /** For the remote sources: extra roots, a bearer token file, a timeout. */
  fetch?: IssuerFetchOptions;
  /** Default meshward-ca; the audience the sidecar's projected token is made for. */
  audience?: string;
  /** Refuse tokens not bound to a pod (those made with `kubectl create token`). Default false. */
  requirePodBinding?: boolean;
  /** Default 30 s of clock skew allowed between the API server and the CA. */
  clockToleranceSeconds?: number;
  /** For tests: the time to verify at. */
  now?: () => Date;
}

/**
 * The outcome of one attestation. `unauthenticated`: the token is not acceptable (say so to the caller).
 * `unavailable`: the issuer's keys could not be had (retry later; the token may be fine).
 */
export type Attestation = ({ ok: true } & WorkloadIdentity) | { ok: false; code: 'unauthenticated' | 'unavailable'; reason: string };

/** The algorithms the API server signs with (RSA or ECDSA keys); never HMAC or "none". */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export class SaTokenAttestor {
  private constructor(
    private readonly opts: SaTokenAttestorOptions,
    private readonly getKey: JWTVerifyGetKey,
  ) {}

  /** Fails (with a message naming the option) on a bad trust domain or an unreadable JWKS file. */
  static async create(opts: SaTokenAttestorOptions): Promise<SaTokenAttestor> {
    const tdError = validateTrustDomain(opts.trustDomain);
    if (tdError) throw new Error(`trust domain "${opts.trustDomain}": ${tdError}`);
    if (opts.issuer === '') throw new Error('the service-account issuer is empty');
    return new SaTokenAttestor(opts, await issuerKeys(opts.issuer, opts.keys, opts.fetch));
  }

  /** Verifies a projected service-account token; yields spiffe://TD/ns/<namespace>/sa/<name>, or why not. */
  async attest(token: string): Promise<Attestation> {
    const audience = this.opts.audience ?? CA_TOKEN_AUDIENCE;
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, {
        issuer: this.opts.issuer,
        audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: this.opts.clockToleranceSeconds ?? 30,
        ...(this.opts.now ? { currentDate: this.opts.now() } : {}),
      }));
    } catch (err) {
      return refusal(err, this.opts.issuer, audience);
    }
    const result = identityFromClaims(payload, this.opts.trustDomain, this.opts.requirePodBinding);
    return result.ok ? { ok: true, ...result.identity } : { ok: false, code: 'unauthenticated', reason: `service-account token refused: ${result.reason}` };
  }
}

function refusal(err: unknown, issuer: string, audience: string): Attestation {
  const no = (reason: string): Attestation => ({ ok: false, code: 'unauthenticated', reason: `service-account token refused: ${reason}` });
  if (err instanceof errors.JWTExpired) return no('it has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return no(`it is not meant for ${audience} (its audience must be "${audience}")`);
    if (err.claim === 'iss') return no(`it was not issued by the cluster issuer ${issuer}`);
    if (err.claim === 'nbf') return no('it is not valid yet');
    return no(`the "${err.claim}" claim ${err.reason === 'missing' ? 'is missing' : 'is not valid'}`);
  }
  if (err instanceof errors.JWKSNoMatchingKey) return no('it is signed with a key the cluster issuer does not publish');
  if (err instanceof errors.JWSSignatureVerificationFailed) return no('its signature does not verify');
  if (err instanceof errors.JOSEAlgNotAllowed) return no('it is signed with an algorithm that is not allowed');
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return no('it is not a well-formed JWT');
  return { ok: false, code: 'unavailable', reason: `cannot get the cluster issuer's keys: ${(err as Error).message}` };
}

import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ownString, tokenScheme, type Clock, type PolicyJwt } from '../../authz/index.js';

// End-user identity from a JWT. A token that is present but does not verify is refused (401) even when nothing
// looks at claims: accepting it silently would let a caller believe it was authenticated. A missing token is refused
// only when the settings say `required: true`. If the keys themselves cannot be had (the JWKS URL is down), that is
// not the caller's fault, so it is not a 401; the filter fails closed with a deny instead.

export type JwtOutcome =
  | { kind: 'absent' }
  | { kind: 'verified'; claims: JWTPayload }
  | { kind: 'rejected'; reason: string; challenge: string };

/** The keys to verify with could not be obtained; the token was never judged. */
export class JwtKeysUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the JWT verification keys are unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'JwtKeysUnavailableError';
  }
}

// jose error codes that mean the token is at fault; every other failure is about the key source.
const TOKEN_FAULTS = new Set([
  errors.JOSEAlgNotAllowed.code,
  errors.JOSENotSupported.code,
  errors.JWKSMultipleMatchingKeys.code,
  errors.JWKSNoMatchingKey.code,
  errors.JWSInvalid.code,
  errors.JWSSignatureVerificationFailed.code,
  errors.JWTClaimValidationFailed.code,
  errors.JWTExpired.code,
  errors.JWTInvalid.code,
]);

const REALM = 'Bearer realm="meshward"';

/** RFC 6750 §3: the challenge for a missing token carries no error code; for a bad one, `invalid_token`. */
function invalidTokenChallenge(reason: string): string {
  const description = reason.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '');
  return `${REALM}, error="invalid_token", error_description="${description}"`;
}

export class JwtVerifier {
  private readonly scheme: string;

  constructor(
    private readonly config: PolicyJwt,
    private readonly keys: JWTVerifyGetKey,
    private readonly clock: Clock,
  ) {
    this.scheme = tokenScheme(config);
  }

  get required(): boolean {
    return this.config.required;
  }

  /** Finds and verifies the token in `headers`; throws JwtKeysUnavailableError when the keys cannot be had. */
  async verify(headers: Readonly<Record<string, string>>): Promise<JwtOutcome> {
    const token = this.extract(ownString(headers, this.config.header));
    if (token === undefined) {
      return this.config.required ? { kind: 'rejected', reason: 'a JWT is required', challenge: REALM } : { kind: 'absent' };
    }
    if (token === '') return { kind: 'rejected', reason: 'the bearer token is empty', challenge: invalidTokenChallenge('empty token') };
    try {
      const { payload } = await jwtVerify(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.config.audiences,
        clockTolerance: this.config.clockSkewSeconds,
        currentDate: new Date(this.clock.now()),
      });
      return { kind: 'verified', claims: payload };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && TOKEN_FAULTS.has(code)) {
        const reason = `invalid JWT: ${(err as Error).message}`;
        return { kind: 'rejected', reason, challenge: invalidTokenChallenge((err as Error).message) };
      }
      throw new JwtKeysUnavailableError(err);
    }
  }

  /** The token, '' for a scheme with nothing after it, undefined when the header carries no token of our scheme. */
  private extract(value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    if (this.scheme === '') return value.trim();
    const space = value.indexOf(' ');
    const scheme = space === -1 ? value : value.slice(0, space);
    // Another scheme (Basic credentials for the app, say) is not a JWT and is left alone.
    if (scheme.toLowerCase() !== this.scheme.toLowerCase()) return undefined;
    return space === -1 ? '' : value.slice(space + 1).trim();
  }
}

import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { parseSvidId, trustDomainId } from '../spiffe/id.js';
import { CaError } from './ca-error.js';
import { UsedTokens, type Locked } from './used-tokens.js';

// One-time join tokens: a JWT (HS256, a secret only the CA holds) bound to exactly one SPIFFE ID. A token buys
// one SVID, once, before it expires. Used token IDs are recorded on disk, in the record every process sharing the
// CA directory reads (used-tokens.ts), before the SVID is returned: neither a restart nor a second server on the
// same directory makes a used token valid again.

export const TOKEN_AUDIENCE = 'meshward-ca';
const USED = 'the join token was already used; each token buys one SVID';

export interface TokenClaims {
  spiffeId: string;
  jti: string;
  expiresAt: number;
}

export async function mintJoinToken(
  secret: Uint8Array,
  opts: { trustDomain: string; spiffeId: string; ttlSeconds: number; now?: Date },
): Promise<string> {
  const id = parseSvidId(opts.spiffeId);
  if (!id.ok) throw new Error(`cannot bind a join token to it: ${id.error}`);
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(trustDomainId(opts.trustDomain))
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(opts.spiffeId)
    .setJti(randomBytes(16).toString('base64url'))
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(opts.ttlSeconds))
    .sign(secret);
}

export class JoinTokens {
  private constructor(
    private readonly secret: Uint8Array,
    private readonly trustDomain: string,
    private readonly used: UsedTokens,
  ) {}

  /** `locked` runs a function holding the CA directory's lock, which guards `usedFile`. */
  static async open(secret: Uint8Array, trustDomain: string, usedFile: string, locked: Locked): Promise<JoinTokens> {
    return new JoinTokens(secret, trustDomain, await UsedTokens.open(usedFile, locked));
  }

  /**
   * Checks a token's signature and claims, without asking whether it was used (ensureUnused) or using it up.
   * Throws CaError(unauthenticated) saying what is wrong with it.
   */
  async authenticate(token: string): Promise<TokenClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, {
        algorithms: ['HS256'],
        issuer: trustDomainId(this.trustDomain),
        audience: TOKEN_AUDIENCE,
        requiredClaims: ['sub', 'jti', 'exp'],
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new CaError('unauthenticated', 'the join token has expired; ask for a new one');
      if (err instanceof errors.JWTClaimValidationFailed) throw new CaError('unauthenticated', `the join token is not valid for this CA (${err.claim} claim)`);
      throw new CaError('unauthenticated', 'the join token is not valid: it is malformed or was not issued by this CA');
    }
    const id = parseSvidId(payload.sub!);
    if (!id.ok) throw new CaError('unauthenticated', `the join token is bound to an ID no SVID may carry: ${id.error}`);
    if (id.value.trustDomain !== this.trustDomain) throw new CaError('unauthenticated', 'the join token is bound to an ID outside this trust domain');
    return { spiffeId: id.value.uri, jti: payload.jti!, expiresAt: payload.exp! };
  }

  /** Refuses a token already used, before any work is done for it; consume() is what makes a use count. */
  ensureUnused(claims: TokenClaims): void {
    if (this.used.has(claims.jti)) throw new CaError('unauthenticated', USED);
  }

  /**
   * Uses a token up, refusing it if any process sharing the CA directory used it first. If recording fails the
   * token stays used up: fail closed.
   */
  async consume(claims: TokenClaims): Promise<void> {
    if (!(await this.used.use({ jti: claims.jti, exp: claims.expiresAt }))) throw new CaError('unauthenticated', USED);
  }

  close(): Promise<void> {
    return this.used.close();
  }
}

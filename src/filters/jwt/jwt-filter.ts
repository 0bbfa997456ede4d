import { resolve } from 'node:path';
import type { JWTVerifyGetKey } from 'jose';
import { FAIL_CLOSED_RULE, jwtSettings, systemClock, type Decision, type PolicyJwt } from '../../authz/index.js';
import type { Logger } from '../../telemetry/index.js';
import { decisionReply } from '../authz/decision-reply.js';
import type { FilterResult, HopContext } from '../chain.js';
import type { FilterFactory, HttpFilter } from '../http-filter.js';
import { WatchedFile } from '../watched-file.js';
import { jwtKeys, parseJwks } from './jwt-keys.js';
import { JwtKeysUnavailableError, JwtVerifier } from './jwt-verifier.js';

// `jwt`: end-user identity from a JWT (a policy file's `jwt` section is the same, for its own rules). A verified
// token's claims go on the request for the filters after it (a rateLimit keyed by a claim; custom filters); a present
// token that does not verify is 401, a missing one only when `required`. Keys that cannot be had deny (fail closed).
// A jwksFile is watched and read again on change and on SIGHUP (a key rotation needs no restart; a bad file keeps the
// last good keys); a jwksUri is fetched by jose, again on an unknown key ID.

export const jwt: FilterFactory<PolicyJwt> = {
  name: 'jwt',
  settings: jwtSettings,
  async create(given, env) {
    if (given.jwksFile === undefined) return jwtFilter(given, jwtKeys(given, env.configDir), env.logger);
    const keys = await WatchedFile.open(resolve(env.configDir, given.jwksFile), parseJwks, env.logger, 'JWKS');
    return { ...jwtFilter(given, (header, token) => keys.current(header, token), env.logger), reload: () => keys.reload(), close: () => keys.close() };
  },
};

function jwtFilter(given: PolicyJwt, keys: JWTVerifyGetKey, logger: Logger): HttpFilter {
  const verifier = new JwtVerifier(given, keys, systemClock);
  return {
    name: 'jwt',
    onRequest: (ctx) => verifier.verify(ctx.request.headers).then(
      (outcome): FilterResult => {
        if (outcome.kind === 'rejected') return refuse(ctx, { kind: 'unauthenticated', reason: outcome.reason, challenge: outcome.challenge });
        if (outcome.kind === 'verified') ctx.request.claims = outcome.claims;
        return undefined;
      },
      (err: unknown) => {
        const reason = err instanceof JwtKeysUnavailableError ? err.message : `internal error: ${String(err)}`;
        logger.error({ requestId: ctx.requestId, err: reason }, 'JWT verification failed; denying');
        return refuse(ctx, { kind: 'deny', rule: FAIL_CLOSED_RULE, reason });
      },
    ),
  };
}

function refuse(ctx: HopContext, decision: Exclude<Decision, { kind: 'allow' }>): FilterResult {
  ctx.decision = { outcome: decision.kind, rule: decision.kind === 'deny' ? decision.rule : 'request' };
  return decisionReply(decision, { requestId: ctx.requestId, explainDenials: true });
}

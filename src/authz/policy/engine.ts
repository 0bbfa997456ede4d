import type { Logger } from '../../telemetry/index.js';
import type { AuthzRequest, Decision, PolicyEngine } from '../types.js';
import type { CompiledPolicy } from './compile.js';
import { evaluate } from './evaluate.js';
import { traceRateLimits, traceRules, type RateLimitTrace, type RuleTrace } from './explain.js';
import { normaliseRequestHost } from './host.js';
import { checkAuthority } from './host.js';
import { methodBit } from './http-method.js';
import { JwtKeysUnavailableError, type JwtOutcome, type JwtVerifier } from './jwt-verifier.js';
import { MatchContext } from './match-context.js';
import { normalisePath, normaliseTargetPath, type NormalisedTarget } from './path-normalise.js';
import type { PolicyRuntime } from './policy-runtime.js';
import type { RateLimitCharge } from './rate-limiter.js';
import { slotsMatch } from './rule-match.js';
import { FAIL_CLOSED_RULE } from './schema.js';

// The engine is the thin, effectful shell around the pure evaluator: it normalises the request, verifies a JWT,
// evaluates, then charges rate limits. The order follows the sidecar's filter chain: a request that cannot be judged
// (400) or authenticated (401) never reaches the rules, and a denied request is never counted against a rate limit.

export interface Explanation {
  /** What `decide` would answer, except that rate limits are reported, not charged. */
  readonly decision: Decision;
  /** The path as rules see it; undefined when the request was malformed before its path was looked at. */
  readonly target?: NormalisedTarget;
  /** Every rule in file order; undefined when the request never reached the rules (400, 401). */
  readonly rules?: RuleTrace[];
  readonly rateLimits?: RateLimitTrace[];
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

type Claims = Readonly<Record<string, unknown>> | undefined;

export class PolicyDecisionEngine implements PolicyEngine {
  constructor(
    readonly policy: CompiledPolicy,
    private readonly runtime: PolicyRuntime,
    private readonly jwt: JwtVerifier | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  /** Whether denials may name the deciding rule to the caller (`explainDenials`). */
  get explainDenials(): boolean {
    return this.policy.explainDenials;
  }

  decide(request: AuthzRequest): Promise<Decision> {
    // Without a JWT to verify a decision is synchronous; it stays so, which spares it the promise chain an async
    // function would add, and only the result is wrapped.
    try {
      const path = checkRequest(request);
      if (typeof path !== 'string') return Promise.resolve(path);
      const headers = request.headers ?? NO_HEADERS;
      if (this.jwt === undefined) return Promise.resolve(this.conclude(request, path, headers, undefined));
      return this.jwt.verify(headers).then(
        (outcome) => (outcome.kind === 'rejected' ? unauthenticated(outcome) : this.conclude(request, path, headers, claimsOf(outcome))),
        (err: unknown) => this.failClosed(request, err),
      );
    } catch (err) {
      return Promise.resolve(this.failClosed(request, err));
    }
  }

  /** Explains a decision rule by rule, for `meshward policy explain`. Charges no rate limit. */
  async explain(request: AuthzRequest): Promise<Explanation> {
    try {
      const malformed = describeMalformed(request);
      if (malformed !== undefined) return { decision: { kind: 'invalid', reason: malformed } };
      const target = normalisePath(request.path);
      if (!target.ok) return { decision: { kind: 'invalid', reason: target.reason }, target };
      const headers = request.headers ?? NO_HEADERS;
      const outcome = this.jwt === undefined ? undefined : await this.jwt.verify(headers);
      if (outcome?.kind === 'rejected') return { decision: unauthenticated(outcome), target };
      const ctx = matchContext(request, target.path, headers, outcome === undefined ? undefined : claimsOf(outcome));
      return {
        decision: evaluate(this.policy, ctx),
        target,
        rules: traceRules(this.policy, ctx),
        rateLimits: traceRateLimits(this.policy, ctx),
      };
    } catch (err) {
      return { decision: this.failClosed(request, err) };
    }
  }

  /** Evaluates a checked (and authenticated) request and charges rate limits on an allow. */
  private conclude(request: AuthzRequest, path: string, headers: Readonly<Record<string, string>>, claims: Claims): Decision {
    try {
      const ctx = matchContext(request, path, headers, claims);
      const verdict = evaluate(this.policy, ctx);
      if (verdict.kind !== 'allow' || this.policy.rateLimits.length === 0) return verdict;
      const refusal = this.runtime.rateLimits.take(this.chargesFor(ctx));
      return refusal === undefined ? verdict : { kind: 'rate_limited', limit: refusal.limit, retryAfterSeconds: refusal.retryAfterSeconds };
    } catch (err) {
      return this.failClosed(request, err);
    }
  }

  private chargesFor(ctx: MatchContext): RateLimitCharge[] {
    const charges: RateLimitCharge[] = [];
    for (const limit of this.policy.rateLimits) {
      if (!slotsMatch(limit, ctx)) continue;
      // Callers without the keyed identity share one bucket per fallback rather than escaping the limit.
      const key = limit.per === 'global' ? '' : limit.per === 'ip' ? (ctx.sourceIp ?? '') : (ctx.principal ?? ctx.sourceIp ?? '');
      charges.push({ limit, key });
    }
    return charges;
  }

  private failClosed(request: AuthzRequest, err: unknown): Decision {
    const reason =
      err instanceof JwtKeysUnavailableError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    this.logger?.error({ err, requestId: request?.requestId }, `policy decision failed, denying: ${reason}`);
    return { kind: 'deny', rule: FAIL_CLOSED_RULE, reason };
  }
}

/**
 * The request's normalised path, or the decision that ends it before it is authenticated (400). A decision needs
 * only the path, so it takes it without the segments and query that normalisePath also returns.
 */
function checkRequest(request: AuthzRequest): string | Decision {
  const malformed = describeMalformed(request);
  if (malformed !== undefined) return { kind: 'invalid', reason: malformed };
  const path = normaliseTargetPath(request.path);
  return typeof path === 'string' ? path : { kind: 'invalid', reason: path.reason };
}

function unauthenticated(outcome: Extract<JwtOutcome, { kind: 'rejected' }>): Decision {
  return { kind: 'unauthenticated', reason: outcome.reason, challenge: outcome.challenge };
}

const claimsOf = (outcome: JwtOutcome): Claims => (outcome.kind === 'verified' ? outcome.claims : undefined);

/** `path` is the normalised path, which may end with a slash. */
function matchContext(request: AuthzRequest, path: string, headers: Readonly<Record<string, string>>, claims: Claims): MatchContext {
  const method = request.method.toUpperCase();
  return new MatchContext({
    principal: request.principal === '' ? undefined : request.principal,
    sourceIp: request.sourceIp,
    port: request.destinationPort,
    method,
    methodBit: methodBit(method),
    host: normaliseRequestHost(request.host),
    // A trailing slash is not significant to rules: `/admin/` must not escape a rule about `/admin`.
    path: path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path,
    headers,
    context: request.contextExtensions,
    claims,
  });
}

/** Why a request cannot be judged at all, or undefined. Callers are other code, but input is never trusted. */
function describeMalformed(request: AuthzRequest): string | undefined {
  if (request === null || typeof request !== 'object') return 'the request is missing';
  if (typeof request.method !== 'string' || request.method === '') return 'the request has no method';
  if (typeof request.path !== 'string') return 'the request has no path';
  if (typeof request.host !== 'string') return 'the request has no host';
  if (request.host !== '') {
    const authority = checkAuthority(request.host);
    if (!authority.ok) return authority.error;
  }
  if (request.headers !== undefined && (request.headers === null || typeof request.headers !== 'object')) {
    return 'the request headers are not a map';
  }
  if (request.principal !== undefined && typeof request.principal !== 'string') return 'the principal is not a string';
  if (request.sourceIp !== undefined && typeof request.sourceIp !== 'string') return 'the source IP is not a string';
  if (request.destinationPort !== undefined && !Number.isInteger(request.destinationPort)) return 'the destination port is not an integer';
  return undefined;
}

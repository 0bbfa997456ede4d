import { dirname, resolve } from 'node:path';
import {
  createPolicyEngine,
  FAIL_CLOSED_RULE,
  loadPolicyFile,
  normalisePath,
  parsePolicy,
  type ActivePolicy,
  type AuthzRequest,
  type Clock,
  type Decision,
  type Explanation,
  type PolicyDecisionEngine,
  type PolicyDocument,
  type PolicyEngine,
  type PolicyLoader,
} from '../../authz/index.js';
import { ConfigError } from '../../config/index.js';
import type { Logger } from '../../telemetry/index.js';
import { jwtKeys } from '../jwt/jwt-keys.js';
import { JwtKeysUnavailableError, JwtVerifier, type JwtOutcome } from '../jwt/jwt-verifier.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';
import type { RateLimitRefusal } from '../rate-limit/store.js';
import { PolicyRuntime } from './policy-runtime.js';

// A policy file, whole: its `jwt` section verifies a token (the jwt filter's verifier), its rules decide (the policy
// engine), its `rateLimits` count what was allowed (the rateLimit filter's limiter). In that order, as the sidecar's
// filters would run them: a request that cannot be judged (400) or authenticated (401) never reaches the rules, and a
// denied request is never counted against a limit. The sidecar's authz filter, `meshward authz` and `meshward policy`
// all decide through this, so a policy means the same wherever it is served.

export class PolicyChain implements PolicyEngine {
  constructor(
    readonly engine: PolicyDecisionEngine,
    private readonly jwt: JwtVerifier | undefined,
    private readonly limits: RateLimiter | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  get explainDenials(): boolean {
    return this.engine.explainDenials;
  }

  /** Sets `request.claims` from a verified token. Synchronous unless there is a token to verify. */
  decide(request: AuthzRequest): Decision | Promise<Decision> {
    if (this.jwt === undefined) return this.judge(request);
    const invalid = this.engine.invalid(request);
    if (invalid !== undefined) return invalid;
    return this.jwt.verify(request.headers ?? {}).then(
      (outcome) => (outcome.kind === 'rejected' ? unauthenticated(outcome) : this.judge(withClaims(request, outcome))),
      (err: unknown) => this.failClosed(request, err),
    );
  }

  /** Explains a decision rule by rule (`meshward policy explain`); counts no rate limit. */
  async explain(request: AuthzRequest): Promise<Explanation> {
    if (this.jwt === undefined) return this.engine.explain(request);
    const invalid = this.engine.invalid(request);
    if (invalid !== undefined) return this.engine.explain(request);
    try {
      const outcome = await this.jwt.verify(request.headers ?? {});
      if (outcome.kind === 'rejected') return { decision: unauthenticated(outcome), target: normalisePath(request.path) };
      return this.engine.explain(withClaims(request, outcome));
    } catch (err) {
      return { decision: this.failClosed(request, err) };
    }
  }

  private judge(request: AuthzRequest): Decision | Promise<Decision> {
    const decision = this.engine.decide(request);
    if (decision.kind !== 'allow' || this.limits === undefined) return decision;
    let refusal: ReturnType<RateLimiter['take']>;
    try {
      refusal = this.limits.take(request);
    } catch (err) {
      return this.failClosed(request, err);
    }
    if (refusal instanceof Promise) return refusal.then((r) => limited(decision, r), (err: unknown) => this.failClosed(request, err));
    return limited(decision, refusal);
  }

  private failClosed(request: AuthzRequest, err: unknown): Decision {
    const reason = err instanceof JwtKeysUnavailableError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    this.logger?.error({ err, requestId: request?.requestId }, `policy decision failed, denying: ${reason}`);
    return { kind: 'deny', rule: FAIL_CLOSED_RULE, reason };
  }
}

function withClaims(request: AuthzRequest, outcome: Exclude<JwtOutcome, { kind: 'rejected' }>): AuthzRequest {
  if (outcome.kind === 'verified') request.claims = outcome.claims;
  else delete request.claims;
  return request;
}

function unauthenticated(outcome: Extract<JwtOutcome, { kind: 'rejected' }>): Decision {
  return { kind: 'unauthenticated', reason: outcome.reason, challenge: outcome.challenge };
}

function limited(decision: Decision, refusal: RateLimitRefusal | undefined): Decision {
  return refusal === undefined ? decision : { kind: 'rate_limited', limit: refusal.limit, retryAfterSeconds: refusal.retryAfterSeconds };
}

export interface PolicyChainOptions {
  /**
   * State kept across reloads (rate-limit buckets, fetched JWKS). Pass the same runtime to every chain built for one
   * server; without one, the chain gets a fresh runtime of its own.
   */
  runtime?: PolicyRuntime;
  /** Used only when no runtime is given. */
  clock?: Clock;
  logger?: Logger;
  /** Names the policy in errors; defaults to the file's path as given, or `policy` for text. */
  label?: string;
  /** Where a relative `jwt.jwksFile` is found; defaults to the policy file's folder, or the working directory. */
  baseDir?: string;
}

/** Builds the chain of a validated document. Reads a `jwt.jwksFile` (throws ConfigError if it is unusable). */
export function createPolicyChain(policy: PolicyDocument, options: PolicyChainOptions = {}): PolicyChain {
  const runtime = options.runtime ?? new PolicyRuntime({ clock: options.clock });
  const engine = createPolicyEngine(policy, { logger: options.logger });
  let jwt: JwtVerifier | undefined;
  if (policy.jwt) {
    try {
      jwt = new JwtVerifier(policy.jwt, jwtKeys(policy.jwt, options.baseDir ?? process.cwd(), (uri) => runtime.remoteKeySet(uri)), runtime.clock);
    } catch (err) {
      throw new ConfigError(options.label ?? 'policy', [{ path: ['jwt', 'jwksFile'], message: (err as Error).message }]);
    }
  }
  runtime.rateLimits.retainOnly(policy.rateLimits.map((l) => l.name));
  const limits = policy.rateLimits.length > 0 ? new RateLimiter(policy.rateLimits, runtime.rateLimits) : undefined;
  return new PolicyChain(engine, jwt, limits, options.logger);
}

/** Loads, validates and builds a policy file. Throws ConfigError for anything invalid: keep the last good one. */
export function loadPolicyChain(file: string, options: PolicyChainOptions = {}): { chain: PolicyChain; policy: PolicyDocument } {
  const policy = loadPolicyFile(file);
  return { chain: createPolicyChain(policy, { ...options, label: options.label ?? file, baseDir: options.baseDir ?? dirname(resolve(file)) }), policy };
}

/** The same from YAML text (tests, embedded policies). */
export function loadPolicyChainFromText(text: string, options: PolicyChainOptions = {}): { chain: PolicyChain; policy: PolicyDocument } {
  const policy = parsePolicy(text, options.label);
  return { chain: createPolicyChain(policy, options), policy };
}

/** For a PolicyReloader: one runtime for all reloads, so that rate-limit buckets and fetched JWKS survive them. */
export function policyChainLoader(logger: Logger): PolicyLoader {
  const runtime = new PolicyRuntime();
  return (file): ActivePolicy => {
    const { chain } = loadPolicyChain(file, { runtime, logger });
    return { engine: chain, explainDenials: chain.explainDenials };
  };
}

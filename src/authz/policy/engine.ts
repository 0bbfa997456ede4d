import type { Logger } from '../../telemetry/index.js';
import type { AuthzRequest, Decision, PolicyEngine } from '../types.js';
import type { CompiledRateLimit } from './compile-rule.js';
import type { CompiledPolicy } from './compile.js';
import { evaluate } from './evaluate.js';
import { traceRateLimits, traceRules, type RateLimitTrace, type RuleTrace } from './explain.js';
import { normaliseRequestHost } from './host.js';
import { checkAuthority } from './host.js';
import { methodBit } from './http-method.js';
import { MatchContext } from './match-context.js';
import { normalisePath, normaliseTargetPath, type NormalisedTarget } from './path-normalise.js';
import { slotsMatch } from './rule-match.js';
import { FAIL_CLOSED_RULE } from './schema.js';

// The engine is the thin shell around the pure evaluator: it normalises the request and evaluates its rules. A
// request that cannot be judged is refused (400) before any rule is looked at. A JWT is verified, and rate limits are
// counted, by filters of their own (filters/jwt, filters/rate-limit), which a policy file's `jwt` and `rateLimits`
// sections become (filters/authz/policy-chain.ts); the engine reads the verified claims from the request.

export interface Explanation {
  /** What `decide` would answer. */
  readonly decision: Decision;
  /** The path as rules see it; undefined when the request was malformed before its path was looked at. */
  readonly target?: NormalisedTarget;
  /** Every rule in file order; undefined when the request never reached the rules (400, 401). */
  readonly rules?: RuleTrace[];
  /** Whether each of the policy's rate limits applies to the request (reported, never counted). */
  readonly rateLimits?: RateLimitTrace[];
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class PolicyDecisionEngine implements PolicyEngine {
  constructor(
    readonly policy: CompiledPolicy,
    private readonly logger: Logger | undefined,
  ) {}

  /** Whether denials may name the deciding rule to the caller (`explainDenials`). */
  get explainDenials(): boolean {
    return this.policy.explainDenials;
  }

  /** Synchronous: rules need no I/O. */
  decide(request: AuthzRequest): Decision {
    try {
      const path = checkRequest(request);
      if (typeof path !== 'string') return path;
      return evaluate(this.policy, matchContext(request, path));
    } catch (err) {
      return this.failClosed(request, err);
    }
  }

  /** Why a request cannot be judged (400), or undefined; what `decide` answers before any rule. */
  invalid(request: AuthzRequest): Decision | undefined {
    try {
      const path = checkRequest(request);
      return typeof path === 'string' ? undefined : path;
    } catch (err) {
      return this.failClosed(request, err);
    }
  }

  /** Explains a decision rule by rule, for `meshward policy explain`. */
  explain(request: AuthzRequest): Explanation {
    try {
      const malformed = describeMalformed(request);
      if (malformed !== undefined) return { decision: { kind: 'invalid', reason: malformed } };
      const target = normalisePath(request.path);
      if (!target.ok) return { decision: { kind: 'invalid', reason: target.reason }, target };
      const ctx = matchContext(request, target.path);
      return { decision: evaluate(this.policy, ctx), target, rules: traceRules(this.policy, ctx), rateLimits: traceRateLimits(this.policy, ctx) };
    } catch (err) {
      return { decision: this.failClosed(request, err) };
    }
  }

  private failClosed(request: AuthzRequest, err: unknown): Decision {
    const reason = `internal error: ${err instanceof Error ? err.message : String(err)}`;
    this.logger?.error({ err, requestId: request?.requestId }, `policy decision failed, denying: ${reason}`);
    return { kind: 'deny', rule: FAIL_CLOSED_RULE, reason };
  }
}

/**
 * The rate limits that apply to a request, matched as rules match (normalised path and host, principal). A request
 * that cannot be judged gets every limit: it is counted, never let past a limit by a path no rule can read.
 */
export function applicableLimits<L extends CompiledRateLimit>(limits: readonly L[], request: AuthzRequest): L[] {
  const path = checkRequest(request);
  if (typeof path !== 'string') return [...limits];
  const ctx = matchContext(request, path);
  return limits.filter((limit) => slotsMatch(limit, ctx));
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

/** `path` is the normalised path, which may end with a slash. */
function matchContext(request: AuthzRequest, path: string): MatchContext {
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
    headers: request.headers ?? NO_HEADERS,
    context: request.contextExtensions,
    claims: request.claims,
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

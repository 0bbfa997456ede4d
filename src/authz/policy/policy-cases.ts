import { z } from 'zod';
import { ConfigError, loadYamlFile, type ConfigProblem } from '../../config/index.js';
import type { AuthzRequest, Decision, PolicyEngine } from '../types.js';
import { tokenHeader } from './jwt-location.js';
import { DEFAULT_RULE, type PolicyDocument } from './schema.js';
import { strictObject } from '../../config/strict-object.js';

// Table-driven policy tests (`meshward policy test`), in the spirit of `opa test`: each case is a request and the
// decision it must get. Cases run in order against one engine whose clock does not move, so a case with `repeat`
// can exhaust a rate limit deterministically and later cases see the buckets as it left them.

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const caseSchema = strictObject({
  name: z.string().min(1, 'must not be empty'),
  request: strictObject({
    principal: z.string().optional(),
    method: z.string().min(1).default('GET'),
    path: z.string(),
    host: z.string().default(''),
    headers: z.record(z.string(), scalar).default({}),
    sourceIp: z.string().optional(),
    port: z.number().int().min(1).max(65535).optional(),
    context: z.record(z.string(), scalar).optional(),
    /** A token, sent in the header the policy's jwt section names. */
    jwt: z.string().optional(),
  }),
  expect: z.enum(['allow', 'deny', 'unauthenticated', 'invalid', 'rate_limited']),
  /** The deciding rule (allow, deny; `default` for defaultAction) or the refusing limit (rate_limited). */
  rule: z.string().optional(),
  /** Send the request this many times; the expectation is about the last answer. */
  repeat: z.number().int().min(1).max(100_000).default(1),
});

const casesSchema = strictObject({ cases: z.array(caseSchema).min(1, 'give at least one case') });

export type PolicyCase = z.output<typeof caseSchema>;

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  readonly expected: string;
  readonly actual: string;
}

/** Reads a cases file and checks it against the policy it tests; throws ConfigError naming file, path and reason. */
export function loadPolicyCases(file: string, policy: PolicyDocument): PolicyCase[] {
  const { cases } = loadYamlFile(file, casesSchema);
  const rules = new Set([DEFAULT_RULE, ...policy.rules.map((r) => r.name)]);
  const limits = new Set(policy.rateLimits.map((l) => l.name));
  const problems: ConfigProblem[] = [];
  cases.forEach((c, i) => {
    if (c.request.jwt !== undefined && !policy.jwt) {
      problems.push({ path: ['cases', i, 'request', 'jwt'], message: 'the policy has no jwt section to send a token to' });
    }
    if (c.rule === undefined) return;
    const known = c.expect === 'rate_limited' ? limits : c.expect === 'allow' || c.expect === 'deny' ? rules : undefined;
    if (known === undefined) {
      problems.push({ path: ['cases', i, 'rule'], message: `a rule is not named by "${c.expect}" decisions; remove it` });
    } else if (!known.has(c.rule)) {
      const what = c.expect === 'rate_limited' ? 'rate limit' : 'rule';
      problems.push({ path: ['cases', i, 'rule'], message: `the policy has no ${what} named "${c.rule}"` });
    }
  });
  if (problems.length > 0) throw new ConfigError(file, problems);
  return cases;
}

export function caseRequest(c: PolicyCase, policy: PolicyDocument): AuthzRequest {
  let headers = Object.fromEntries(Object.entries(c.request.headers).map(([k, v]) => [k.toLowerCase(), v]));
  if (c.request.jwt !== undefined && policy.jwt) {
    const [name, value] = tokenHeader(policy.jwt, c.request.jwt);
    headers = { ...headers, [name]: value };
  }
  return {
    principal: c.request.principal,
    method: c.request.method,
    path: c.request.path,
    host: c.request.host,
    headers,
    sourceIp: c.request.sourceIp,
    destinationPort: c.request.port,
    contextExtensions: c.request.context,
  };
}

export async function runPolicyCases(engine: PolicyEngine, policy: PolicyDocument, cases: readonly PolicyCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const request = caseRequest(c, policy);
    let decision = await engine.decide(request);
    for (let i = 1; i < c.repeat; i++) decision = await engine.decide(request);
    const passed = decision.kind === c.expect && (c.rule === undefined || decidedBy(decision) === c.rule);
    const expected = c.rule === undefined ? c.expect : `${c.expect} (${c.expect === 'rate_limited' ? 'limit' : 'rule'} "${c.rule}")`;
    results.push({ name: c.name, passed, expected, actual: describeDecision(decision) });
  }
  return results;
}

function decidedBy(decision: Decision): string | undefined {
  if (decision.kind === 'allow' || decision.kind === 'deny') return decision.rule;
  if (decision.kind === 'rate_limited') return decision.limit;
  return undefined;
}

/** One line, e.g. `deny (rule "no-admin")` or `invalid (the path contains an encoded slash (%2F))`. */
export function describeDecision(decision: Decision): string {
  switch (decision.kind) {
    case 'allow':
      return `allow (rule "${decision.rule}")`;
    case 'deny':
      return `deny (rule "${decision.rule}")`;
    case 'rate_limited':
      return `rate_limited (limit "${decision.limit}", retry after ${decision.retryAfterSeconds}s)`;
    case 'unauthenticated':
    case 'invalid':
      return `${decision.kind} (${decision.reason})`;
  }
}

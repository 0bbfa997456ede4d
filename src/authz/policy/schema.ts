import { z } from 'zod';
import { HEADER_NAME, parseConditionKey } from './condition-key.js';
import { parsePolicyHost } from './host.js';
import { parseIpBlock } from './ip-block.js';
import { parsePathPattern } from './path-pattern.js';
import type { PatternResult } from './pattern-result.js';
import { parsePrincipalPattern } from './principal-pattern.js';
import { strictObject } from '../../config/strict-object.js';

// The policy file's schema (the contract in issue 3). Everything that can be checked without a request is checked
// here, so that `meshward policy check` catches it and the compiler can trust its input.

/** The rule reference of a decision that no rule made: `defaultAction` applied. */
export const DEFAULT_RULE = 'default';
/** The rule reference of a fail-closed denial: the engine could not decide (an internal error, an unreachable JWKS). */
export const FAIL_CLOSED_RULE = 'error';

const RESERVED_NAMES = new Set([DEFAULT_RULE, FAIL_CLOSED_RULE]);
// Names travel in the `x-meshward-denied-by` header and in log lines, so they are kept to header-safe characters.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const METHOD = /^[A-Z][A-Z0-9_-]*$/;

function checked<T>(parse: (source: string) => PatternResult<T>) {
  return z.string().superRefine((value, ctx) => {
    const result = parse(value);
    if (!result.ok) ctx.addIssue({ code: 'custom', message: result.error });
  });
}

const principals = z.array(checked(parsePrincipalPattern));
const ipBlocks = z.array(checked(parseIpBlock));
const hosts = z.array(checked(parsePolicyHost));
const paths = z.array(checked(parsePathPattern));
const methods = z.array(
  z
    .string()
    .transform((m) => m.toUpperCase())
    .superRefine((m, ctx) => {
      if (!METHOD.test(m)) ctx.addIssue({ code: 'custom', message: `"${m}" is not an HTTP method` });
    }),
);
const ports = z.array(
  z.unknown().transform((p, ctx) => {
    if (typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535) return p;
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p)} is not a port (an integer 1-65535)` });
    return z.NEVER;
  }),
);
const name = (what: string) =>
  z.string().superRefine((n, ctx) => {
    if (!NAME.test(n)) {
      ctx.addIssue({ code: 'custom', message: `"${n}" is not a valid ${what} name: use up to 128 letters, digits, ".", "_", ":" and "-"` });
    } else if (RESERVED_NAMES.has(n)) {
      ctx.addIssue({ code: 'custom', message: `"${n}" is reserved; choose another ${what} name` });
    }
  });

const whenCondition = strictObject({
  key: z.string(),
  values: z.array(z.union([z.string(), z.number(), z.boolean()]).transform(String)).min(1, 'give at least one value'),
}).superRefine((condition, ctx) => {
  const key = parseConditionKey(condition.key);
  if (!key.ok) {
    ctx.addIssue({ code: 'custom', path: ['key'], message: key.error });
    return;
  }
  const parseValue =
    key.value.kind === 'sourceIp' ? parseIpBlock : key.value.kind === 'sourcePrincipal' ? parsePrincipalPattern : undefined;
  if (!parseValue) return;
  condition.values.forEach((value, i) => {
    const result = parseValue(value);
    if (!result.ok) ctx.addIssue({ code: 'custom', path: ['values', i], message: result.error });
  });
});

const ruleSchema = strictObject({
  name: name('rule'),
  action: z.enum(['allow', 'deny', 'audit']),
  dryRun: z.boolean().default(false),
  from: strictObject({
    principals: principals.optional(),
    notPrincipals: principals.optional(),
    ipBlocks: ipBlocks.optional(),
    notIpBlocks: ipBlocks.optional(),
  }).optional(),
  to: strictObject({
    hosts: hosts.optional(),
    notHosts: hosts.optional(),
    methods: methods.optional(),
    notMethods: methods.optional(),
    paths: paths.optional(),
    notPaths: paths.optional(),
    ports: ports.optional(),
  }).optional(),
  when: z.array(whenCondition).optional(),
}).superRefine((rule, ctx) => {
  if (rule.dryRun && rule.action === 'audit') {
    ctx.addIssue({ code: 'custom', path: ['dryRun'], message: 'an audit rule decides nothing, so it cannot be a dry run' });
  }
});

/**
 * Whose bucket a request is counted in: its principal (the SPIFFE ID, or `apikey:NAME` when an API key
 * authenticated it), its API key's name, its source IP, one bucket for everyone, a header's value, or a JWT claim's.
 * A request without the keyed value (no principal, no such header or claim) is counted by its source IP.
 */
const rateLimitKey = z.string().superRefine((per, ctx) => {
  if (per === 'principal' || per === 'apiKey' || per === 'ip' || per === 'global') return;
  if (per.startsWith('header:') && HEADER_NAME.test(per.slice('header:'.length))) return;
  if (/^claim:[^.]+(\.[^.]+)*$/.test(per)) return;
  ctx.addIssue({ code: 'custom', message: `"${per}" is not a rate-limit key: use principal, apiKey, ip, global, header:NAME (lower case) or claim:NAME (a dotted path)` });
});

/** One rate limit: of a policy file's `rateLimits`, and of the rateLimit filter's `limits`. */
export const rateLimitSettings = strictObject({
  name: name('rate limit'),
  match: strictObject({
    principals: principals.optional(),
    paths: paths.optional(),
    methods: methods.optional(),
    hosts: hosts.optional(),
  }).optional(),
  requestsPerSecond: z.number().positive('must be greater than 0').finite(),
  burst: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
  per: rateLimitKey.default('principal'),
});

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Where JWTs come from and how they are verified: a policy file's `jwt`, and the jwt filter's settings. */
export const jwtSettings = strictObject({
  issuer: z.string().min(1, 'must not be empty'),
  audiences: z.array(z.string().min(1, 'must not be empty')).min(1, 'name at least one audience: a token for another service must not pass'),
  jwksUri: z.string().optional(),
  jwksFile: z.string().min(1, 'must not be empty').optional(),
  required: z.boolean().default(false),
  /** The header carrying the token (lower case). */
  header: z
    .string()
    .transform((h) => h.toLowerCase())
    .superRefine((h, ctx) => {
      if (!HEADER_NAME.test(h)) ctx.addIssue({ code: 'custom', message: `"${h}" is not a header name` });
    })
    .default('authorization'),
  /** The auth scheme before the token; defaults to Bearer for `authorization`, none for other headers. */
  scheme: z.string().optional(),
  clockSkewSeconds: z.number().int().min(0).max(300).default(30),
}).superRefine((jwt, ctx) => {
  if ((jwt.jwksUri === undefined) === (jwt.jwksFile === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of jwksUri and jwksFile' });
  }
  if (jwt.jwksUri !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(jwt.jwksUri);
    } catch {
      ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: `"${jwt.jwksUri}" is not a URL` });
    }
    // Keys fetched over plain HTTP could be swapped by anyone on the path; loopback is allowed for local setups.
    if (url && url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'must be an https:// URL (http:// is accepted only for localhost)' });
    }
  }
});

// A file being written, truncated or emptied by mistake reads as an empty document (YAML gives null, which the
// loader passes on as {}); taken as a policy it would deny everything and take the service down. A deny-all
// policy is said in so many words: `defaultAction: deny`.
const notEmpty = z.unknown().superRefine((doc, ctx) => {
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && Object.keys(doc).length === 0) {
    ctx.addIssue({ code: 'custom', message: 'the policy is empty (no defaultAction, no rules): an empty file is never taken as a policy; for deny-all write "defaultAction: deny"' });
  }
});

export const policySchema = notEmpty.pipe(strictObject({
  defaultAction: z.enum(['deny', 'allow']).default('deny'),
  explainDenials: z.boolean().default(true),
  rules: z.array(ruleSchema).default([]),
  rateLimits: z.array(rateLimitSettings).default([]),
  jwt: jwtSettings.optional(),
}).superRefine((policy, ctx) => {
  reportDuplicates(policy.rules, 'rules', 'rule', ctx);
  reportDuplicates(policy.rateLimits, 'rateLimits', 'rate limit', ctx);
  if (!policy.jwt) {
    policy.rules.forEach((rule, r) =>
      rule.when?.forEach((condition, c) => {
        if (condition.key.startsWith('jwt.claims.')) {
          ctx.addIssue({ code: 'custom', path: ['rules', r, 'when', c, 'key'], message: `"${condition.key}" needs a jwt: section to verify tokens` });
        }
      }),
    );
    policy.rateLimits.forEach((limit, l) => {
      if (limit.per.startsWith('claim:')) ctx.addIssue({ code: 'custom', path: ['rateLimits', l, 'per'], message: `"${limit.per}" needs a jwt: section to verify tokens` });
    });
  }
}));

function reportDuplicates(items: readonly { name: string }[], field: string, what: string, ctx: z.RefinementCtx): void {
  const firstAt = new Map<string, number>();
  items.forEach((item, i) => {
    const first = firstAt.get(item.name);
    if (first === undefined) firstAt.set(item.name, i);
    else ctx.addIssue({ code: 'custom', path: [field, i, 'name'], message: `duplicate ${what} name "${item.name}" (first used at ${field}[${first}])` });
  });
}

export type PolicyDocument = z.output<typeof policySchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type PolicyRateLimit = PolicyDocument['rateLimits'][number];
export type PolicyJwt = NonNullable<PolicyDocument['jwt']>;
export type RuleAction = PolicyRule['action'];

import { basename } from 'node:path';
import {
  foreignPrincipals,
  formatExplanation,
  loadPolicyCases,
  ManualClock,
  runPolicyCases,
  summarisePolicy,
  tokenHeader,
  type AuthzRequest,
} from '../authz/index.js';
import { loadYamlFile, sidecarConfigSchema } from '../config/index.js';
import { loadPolicyChain, PolicyRuntime } from '../filters/index.js';
import { validateTrustDomain } from '../spiffe/index.js';
import { parseFlags, required, runSubcommand, UsageError, type Command } from './command.js';

const USAGE = `
Usage:
  meshward policy check FILE [--trust-domain TD | --config SIDECAR.yaml]
  meshward policy explain FILE --path PATH [--method GET] [--principal SPIFFE_ID] [--host HOST]
                          [--header NAME=VALUE]... [--source-ip IP] [--port N] [--jwt TOKEN]
                          [--context NAME=VALUE]... [--json]
  meshward policy test FILE CASES.yaml

check    validate a policy file; errors name the file, the path inside it and the reason (exit 1). With the
         trust domain it serves (--trust-domain, or a sidecar's --config), warn of every principal in another
         trust domain: a caller from there never reaches the policy, so such a rule never matches
explain  show the decision for one request and, rule by rule, whether it matched and why not; exit 0 when it
         is allowed, 1 when it is not (denied, unauthenticated, rate-limited or invalid)
test     run table-driven cases (name, request, expect, rule?) against a policy; exit 1 if any fails
`;

function positionals(argv: string[], names: string[]): string[] {
  const { positionals: given } = parseFlags(argv, {}, true);
  if (given.length !== names.length) throw new UsageError(`expected ${names.join(' and ')}`);
  return given;
}

/** `NAME=VALUE` flags as own properties (fromEntries, so that a name like `__proto__` is just a name). */
function keyValues(entries: string[] | undefined, flag: string, lowerCaseNames = false): Record<string, string> {
  return Object.fromEntries(
    (entries ?? []).map((entry) => {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new UsageError(`--${flag} takes NAME=VALUE, not "${entry}"`);
      const name = entry.slice(0, eq);
      return [lowerCaseNames ? name.toLowerCase() : name, entry.slice(eq + 1)];
    }),
  );
}

function check(argv: string[]): number {
  const { values, positionals: files } = parseFlags(argv, { 'trust-domain': { type: 'string' }, config: { type: 'string' } }, true);
  if (files.length !== 1) throw new UsageError('expected FILE');
  const file = files[0]!;
  const trustDomain = servedTrustDomain(values['trust-domain'], values.config);
  // The whole file, as a server would load it: a jwt.jwksFile that cannot be read is refused here too.
  const { policy } = loadPolicyChain(file);
  process.stdout.write(`${basename(file)}: OK: ${summarisePolicy(policy)}\n`);
  if (trustDomain === undefined) return 0;
  for (const f of foreignPrincipals(policy, trustDomain)) {
    process.stderr.write(
      `warning: ${basename(file)}: ${f.path}: ${f.owner} names ${f.principal}, in trust domain ${f.trustDomain}, not ${trustDomain}: it never matches a caller\n`,
    );
  }
  return 0;
}

/** The trust domain the policy serves: given, or the sidecar config's `trustDomain`; undefined when neither. */
function servedTrustDomain(given: string | undefined, sidecarConfig: string | undefined): string | undefined {
  if (given !== undefined && sidecarConfig !== undefined) throw new UsageError('give --trust-domain or --config, not both');
  // The config's schema alone: the files it names may live on another machine (the one the sidecar runs on).
  if (sidecarConfig !== undefined) return loadYamlFile(sidecarConfig, sidecarConfigSchema).trustDomain;
  if (given === undefined) return undefined;
  const error = validateTrustDomain(given);
  if (error) throw new UsageError(`--trust-domain "${given}": ${error}`);
  return given;
}

async function explain(argv: string[]): Promise<number> {
  const { values, positionals: files } = parseFlags(
    argv,
    {
      principal: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string' },
      host: { type: 'string', default: '' },
      header: { type: 'string', multiple: true },
      'source-ip': { type: 'string' },
      port: { type: 'string' },
      jwt: { type: 'string' },
      context: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    },
    true,
  );
  if (files.length !== 1) throw new UsageError('expected FILE');
  const path = required(values.path, 'path');
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be 1-65535, not "${values.port}"`);
  }
  let headers = keyValues(values.header, 'header', true);
  const { chain, policy } = loadPolicyChain(files[0]!);
  if (values.jwt !== undefined) {
    if (!policy.jwt) throw new Error('--jwt needs a policy with a jwt section');
    const [name, value] = tokenHeader(policy.jwt, values.jwt);
    headers = { ...headers, [name]: value };
  }
  const request: AuthzRequest = {
    principal: values.principal,
    method: values.method!,
    path,
    host: values.host!,
    headers,
    sourceIp: values['source-ip'],
    destinationPort: port,
    contextExtensions: values.context ? keyValues(values.context, 'context') : undefined,
  };
  const explanation = await chain.explain(request);
  process.stdout.write(values.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation, path));
  // Scriptable like `policy test`: 0 only when the request would be let through.
  return explanation.decision.kind === 'allow' ? 0 : 1;
}

async function test(argv: string[]): Promise<number> {
  const [file, casesFile] = positionals(argv, ['FILE', 'CASES.yaml']) as [string, string];
  // A clock that stands still: rate-limit cases give the same answer however fast the machine is.
  const runtime = new PolicyRuntime({ clock: new ManualClock() });
  const { chain, policy } = loadPolicyChain(file, { runtime });
  const cases = loadPolicyCases(casesFile, policy);
  const results = await runPolicyCases(chain, policy, cases);
  for (const r of results) {
    process.stdout.write(r.passed ? `PASS  ${r.name}\n` : `FAIL  ${r.name}: expected ${r.expected}, got ${r.actual}\n`);
  }
  const failed = results.filter((r) => !r.passed).length;
  process.stdout.write(`${results.length - failed} passed, ${failed} failed (${results.length} cases)\n`);
  return failed === 0 ? 0 : 1;
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'check, explain and test policy files',
  usage: USAGE,
  run: (argv) => runSubcommand(argv, { check, explain, test }),
};

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { ConfigError, loadYamlFile, parseYaml } from '../../config/index.js';
import type { Logger } from '../../telemetry/index.js';
import type { Clock } from './clock.js';
import { compilePolicy } from './compile.js';
import { PolicyDecisionEngine } from './engine.js';
import { JwtVerifier } from './jwt-verifier.js';
import { PolicyRuntime } from './policy-runtime.js';
import { policySchema, type PolicyDocument, type PolicyJwt } from './schema.js';

export interface PolicyEngineOptions {
  /**
   * State kept across reloads (rate-limit buckets, fetched JWKS). Pass the same runtime to every engine built for
   * one server; without one, the engine gets a fresh runtime of its own.
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

export interface LoadedPolicy {
  readonly engine: PolicyDecisionEngine;
  readonly policy: PolicyDocument;
}

/** Validates policy YAML; throws ConfigError naming `label`, the path inside and the reason for every problem. */
export function parsePolicy(text: string, label = 'policy'): PolicyDocument {
  return parseYaml(text, policySchema, label);
}

/** Reads and validates a policy file; throws ConfigError. */
export function loadPolicyFile(file: string): PolicyDocument {
  return loadYamlFile(file, policySchema);
}

/** Builds an engine from a validated document. Reads a `jwt.jwksFile` (throws ConfigError if it is unusable). */
export function createPolicyEngine(policy: PolicyDocument, options: PolicyEngineOptions = {}): PolicyDecisionEngine {
  const runtime = options.runtime ?? new PolicyRuntime({ clock: options.clock });
  const compiled = compilePolicy(policy);
  const jwt = policy.jwt ? new JwtVerifier(policy.jwt, jwtKeys(policy.jwt, runtime, options), runtime.clock) : undefined;
  runtime.rateLimits.retainOnly(compiled.rateLimits.map((l) => l.name));
  return new PolicyDecisionEngine(compiled, runtime, jwt, options.logger);
}

/** Loads, validates and compiles a policy file. Throws ConfigError for anything invalid: keep the last good engine. */
export function loadPolicyEngine(file: string, options: PolicyEngineOptions = {}): LoadedPolicy {
  const policy = loadPolicyFile(file);
  const engine = createPolicyEngine(policy, {
    ...options,
    label: options.label ?? file,
    baseDir: options.baseDir ?? dirname(resolve(file)),
  });
  return { engine, policy };
}

/** The same from YAML text (tests, embedded policies). */
export function loadPolicyEngineFromText(text: string, options: PolicyEngineOptions = {}): LoadedPolicy {
  const policy = parsePolicy(text, options.label);
  return { engine: createPolicyEngine(policy, options), policy };
}

function jwtKeys(jwt: PolicyJwt, runtime: PolicyRuntime, options: PolicyEngineOptions): JWTVerifyGetKey {
  if (jwt.jwksUri !== undefined) return runtime.remoteKeySet(jwt.jwksUri);
  const file = resolve(options.baseDir ?? process.cwd(), jwt.jwksFile!);
  const fail = (message: string) => new ConfigError(options.label ?? 'policy', [{ path: ['jwt', 'jwksFile'], message }]);
  let jwks: unknown;
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? `${file}: file not found` : `${file}: ${(err as Error).message}`);
  }
  try {
    return createLocalJWKSet(jwks as JSONWebKeySet);
  } catch (err) {
    throw fail(`${file}: not a JSON Web Key Set: ${(err as Error).message}`);
  }
}

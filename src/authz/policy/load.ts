import { loadYamlFile, parseYaml } from '../../config/index.js';
import type { Logger } from '../../telemetry/index.js';
import { compilePolicy } from './compile.js';
import { PolicyDecisionEngine } from './engine.js';
import { policySchema, type PolicyDocument } from './schema.js';

// The rules of a policy file. Its `jwt` and `rateLimits` sections become filters (filters/authz/policy-chain.ts,
// which loads a whole policy file: that is what the sidecar, `meshward authz` and `meshward policy` use).

export interface PolicyEngineOptions {
  logger?: Logger;
  /** Names the policy in errors; defaults to the file's path as given, or `policy` for text. */
  label?: string;
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

/** Builds the rules' engine from a validated document. */
export function createPolicyEngine(policy: PolicyDocument, options: PolicyEngineOptions = {}): PolicyDecisionEngine {
  return new PolicyDecisionEngine(compilePolicy(policy), options.logger);
}

/** Loads, validates and compiles a policy file's rules. Throws ConfigError for anything invalid: keep the last good engine. */
export function loadPolicyEngine(file: string, options: PolicyEngineOptions = {}): LoadedPolicy {
  const policy = loadPolicyFile(file);
  return { engine: createPolicyEngine(policy, options), policy };
}

/** The same from YAML text (tests, embedded policies). */
export function loadPolicyEngineFromText(text: string, options: PolicyEngineOptions = {}): LoadedPolicy {
  const policy = parsePolicy(text, options.label);
  return { engine: createPolicyEngine(policy, options), policy };
}

// The loaded rate-limit config and the lookup of a descriptor's limit, as envoyproxy/ratelimit matches them:
// entries are matched level by level, an entry's key_value first (then a value ending in `*` as a prefix), then its
// key alone (which matches any value); a limit applies only when the descriptor ends at the level that holds it.
import { readFileSync } from 'node:fs';
import { ConfigError, fileProblem, parseYamlDocuments } from '../config/index.js';
import { domainConfigSchema, type DescriptorInput } from './config-schema.js';
import type { TimeUnit } from './time-unit.js';

export interface DescriptorEntry {
  key: string;
  value: string;
}

export interface RateLimitRule {
  /** Absent for `unlimited: true`: matched, never counted. */
  limit?: { requestsPerUnit: number; unit: TimeUnit };
  shadowMode: boolean;
  name?: string;
  /** Names of limits that this one takes the place of when both match one request. */
  replaces: readonly string[];
}

interface DescriptorNode {
  children: Map<string, DescriptorNode>;
  /** Child keys whose value ends in `*`, in config order. */
  wildcards: string[];
  rule?: RateLimitRule;
}

export class RateLimitConfig {
  private constructor(private readonly domains: ReadonlyMap<string, DescriptorNode>) {}

  /** Reads and compiles a config file; throws a ConfigError naming the file, the path inside and the reason. */
  static load(file: string): RateLimitConfig {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, [{ path: [], message: fileProblem(err) }]);
    }
    return RateLimitConfig.parse(text, file);
  }

  static parse(text: string, file: string): RateLimitConfig {
    const documents = parseYamlDocuments(text, domainConfigSchema, file);
    if (documents.length === 0) throw new ConfigError(file, [{ path: [], message: 'holds no domain; start with `domain: NAME`' }]);
    const domains = new Map<string, DescriptorNode>();
    documents.forEach((document, i) => {
      if (domains.has(document.domain)) {
        throw new ConfigError(file, [{ path: [], message: `document ${i + 1}: domain "${document.domain}" is already configured above` }]);
      }
      domains.set(document.domain, compileLevel(document.descriptors ?? []));
    });
    return new RateLimitConfig(domains);
  }

  get domainNames(): string[] {
    return [...this.domains.keys()];
  }

  hasDomain(domain: string): boolean {
    return this.domains.has(domain);
  }

  /** The limit for one descriptor of a request in `domain`, or undefined when none applies. */
  lookup(domain: string, entries: readonly DescriptorEntry[]): RateLimitRule | undefined {
    let level = this.domains.get(domain);
    let rule: RateLimitRule | undefined;
    for (const [i, entry] of entries.entries()) {
      if (level === undefined) return undefined;
      const node = level.children.get(`${entry.key}_${entry.value}`) ?? wildcardMatch(level, entry) ?? level.children.get(entry.key);
      if (node?.rule && i === entries.length - 1) rule = node.rule;
      if (node === undefined || node.children.size === 0) break;
      level = node;
    }
    return rule;
  }
}

function wildcardMatch(level: DescriptorNode, entry: DescriptorEntry): DescriptorNode | undefined {
  const name = `${entry.key}_${entry.value}`;
  const wildcard = level.wildcards.find((w) => name.startsWith(w.slice(0, -1)));
  return wildcard === undefined ? undefined : level.children.get(wildcard);
}

function compileLevel(descriptors: DescriptorInput[]): DescriptorNode {
  const level: DescriptorNode = { children: new Map(), wildcards: [] };
  for (const input of descriptors) {
    const name = input.value === undefined ? input.key : `${input.key}_${input.value}`;
    const node = compileLevel(input.descriptors ?? []);
    const limit = input.rate_limit;
    if (limit) {
      node.rule = {
        ...(limit.unlimited ? {} : { limit: { requestsPerUnit: limit.requests_per_unit!, unit: limit.unit! } }),
        shadowMode: input.shadow_mode ?? false,
        ...(limit.name === undefined ? {} : { name: limit.name }),
        replaces: (limit.replaces ?? []).map((r) => r.name),
      };
    }
    level.children.set(name, node);
    if (name.endsWith('*')) level.wildcards.push(name);
  }
  return level;
}

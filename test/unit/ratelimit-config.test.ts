import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { RateLimitConfig } from '../../src/ratelimit/rate-limit-config.js';

const parse = (text: string) => RateLimitConfig.parse(text, 'limits.yaml');
const problem = (text: string) => {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('the config was accepted');
};
const entries = (...pairs: Array<[string, string]>) => pairs.map(([key, value]) => ({ key, value }));

describe('rate-limit config: envoyproxy/ratelimit\'s format', () => {
  const config = parse(`
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: { unit: day, requests_per_unit: 5 }
  - key: to_number
    rate_limit: { unit: DAY, requests_per_unit: 100 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 10 }
  - key: remote_address
    value: 50.0.0.5
    rate_limit: { unit: second, requests_per_unit: 0 }
  - key: port
    value: 443
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: path
    value: /api/*
    rate_limit: { unit: hour, requests_per_unit: 7 }
  - key: ldap
    rate_limit: { unlimited: true }
`);

  it.each([
    ['a key without value matches any value', [['to_number', '2061111111']], { requestsPerUnit: 100, unit: 'DAY' }],
    ['nested entries match at their depth', [['message_type', 'marketing'], ['to_number', '2061111111']], { requestsPerUnit: 5, unit: 'DAY' }],
    ['key and value match before key alone', [['remote_address', '50.0.0.5']], { requestsPerUnit: 0, unit: 'SECOND' }],
    ['other values fall back to the key', [['remote_address', '50.0.0.1']], { requestsPerUnit: 10, unit: 'SECOND' }],
    ['a YAML number value is matched as written', [['port', '443']], { requestsPerUnit: 1, unit: 'MINUTE' }],
    ['a value ending in * matches as a prefix', [['path', '/api/orders']], { requestsPerUnit: 7, unit: 'HOUR' }],
  ] as const)('%s', (_what, pairs, limit) => {
    expect(config.lookup('messaging', entries(...(pairs as unknown as Array<[string, string]>)))?.limit).toEqual(limit);
  });

  it.each([
    ['a descriptor that stops above the limit', [['message_type', 'marketing']]],
    ['a descriptor deeper than the config', [['to_number', '1'], ['extra', 'x']]],
    ['a key the config does not have', [['nope', 'x']]],
    ['a value the config does not have, for a key that needs one', [['message_type', 'transactional'], ['to_number', '1']]],
  ] as const)('has no limit for %s', (_what, pairs) => {
    expect(config.lookup('messaging', entries(...(pairs as unknown as Array<[string, string]>)))).toBeUndefined();
  });

  it('knows unlimited entries, and no other domain', () => {
    expect(config.lookup('messaging', entries(['ldap', 'x']))).toEqual({ shadowMode: false, replaces: [] });
    expect(config.lookup('other', entries(['to_number', '1']))).toBeUndefined();
  });

  it('holds several domains as YAML documents', () => {
    const two = parse('domain: a\n---\ndomain: b\ndescriptors:\n  - key: k\n    rate_limit: { unit: year, requests_per_unit: 1 }\n');
    expect(two.domainNames).toEqual(['a', 'b']);
    expect(two.lookup('b', entries(['k', 'v']))?.limit).toEqual({ requestsPerUnit: 1, unit: 'YEAR' });
  });

  it.each([
    ['a unit it does not know', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: week, requests_per_unit: 1 }', 'limits.yaml: descriptors[0].rate_limit.unit: "week" is not a unit; use one of second, minute, hour, day, month, year'],
    ['no unit', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { requests_per_unit: 1 }', 'limits.yaml: descriptors[0].rate_limit.unit: is required (or unlimited: true)'],
    ['no requests_per_unit', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second }', 'limits.yaml: descriptors[0].rate_limit.requests_per_unit: is required (0 refuses every request)'],
    ['a unit with unlimited', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unlimited: true, unit: second }', 'limits.yaml: descriptors[0].rate_limit.unit: must not be given with unlimited: true'],
    ['a negative limit', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: -1 }', 'limits.yaml: descriptors[0].rate_limit.requests_per_unit: must be at least 0'],
    ['a nested unknown key', 'domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n        rate_limt: { unit: second, requests_per_unit: 1 }', 'limits.yaml: descriptors[0].descriptors[0]: unknown field "rate_limt" (did you mean "rate_limit"?)'],
    ['an empty key', 'domain: d\ndescriptors:\n  - key: ""', 'limits.yaml: descriptors[0].key: must not be empty'],
    ['two entries alike', 'domain: d\ndescriptors:\n  - key: k\n    value: v\n  - key: k\n    value: v', 'limits.yaml: descriptors[1]: a second entry for key "k" and value "v"'],
    ['a limit replacing itself', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { name: x, replaces: [{ name: x }], unit: second, requests_per_unit: 1 }', 'limits.yaml: descriptors[0].rate_limit.replaces[0].name: must not be the limit\'s own name'],
    ['no domain', 'descriptors: []', 'limits.yaml: domain: is required'],
    ['one domain twice', 'domain: d\n---\ndomain: d', 'limits.yaml: document 2: domain "d" is already configured above'],
    ['an empty file', '', 'limits.yaml: holds no domain; start with `domain: NAME`'],
    ['a bad document among several', 'domain: a\n---\ndomain: b\nextra: 1', 'limits.yaml (document 2): unknown field "extra"'],
  ])('refuses %s, naming the file, the path and the reason', (_what, text, message) => {
    expect(problem(text)).toContain(message);
  });
});

describe('examples/ratelimit.yaml (the README\'s example)', () => {
  it('loads, with the limits its comments describe', () => {
    const example = RateLimitConfig.load(new URL('../../examples/ratelimit.yaml', import.meta.url).pathname);
    expect(example.domainNames).toEqual(['edge', 'internal']);
    expect(example.lookup('edge', entries(['remote_address', '198.51.100.1']))?.limit).toEqual({ requestsPerUnit: 100, unit: 'MINUTE' });
    expect(example.lookup('edge', entries(['remote_address', '203.0.113.7']))?.limit).toEqual({ requestsPerUnit: 0, unit: 'MINUTE' });
    expect(example.lookup('edge', entries(['plan', 'gold'], ['consumer', 'c1']))).toMatchObject({ name: 'gold_daily', replaces: ['consumer_daily'], limit: { requestsPerUnit: 100000, unit: 'DAY' } });
    expect(example.lookup('edge', entries(['path', '/search']))?.shadowMode).toBe(true);
    expect(example.lookup('edge', entries(['path', '/healthz']))?.limit).toBeUndefined();
  });
});

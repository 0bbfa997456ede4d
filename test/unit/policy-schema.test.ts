import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { parsePolicy } from '../../src/authz/index.js';

/** The error lines for a policy, or [] when it is valid. */
function problems(yaml: string): string[] {
  try {
    parsePolicy(yaml, 'policy.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message.split('\n');
  }
}

describe('policy schema', () => {
  it('fills the defaults of the contract', () => {
    const policy = parsePolicy('rules: [{ name: r, action: allow }]');
    expect(policy).toMatchObject({ defaultAction: 'deny', explainDenials: true, rateLimits: [] });
    expect(policy.rules[0]).toEqual({ name: 'r', action: 'allow', dryRun: false });
    expect(parsePolicy('defaultAction: deny')).toMatchObject({ defaultAction: 'deny', rules: [] });
  });

  it.each(['', '\n\n', '# comments only\n# nothing else\n', '---\n', '~', '{}'])('refuses an empty document (%j): it is never a deny-all policy', (yaml) => {
    expect(problems(yaml)).toEqual([
      'policy.yaml: the policy is empty (no defaultAction, no rules): an empty file is never taken as a policy; for deny-all write "defaultAction: deny"',
    ]);
  });

  it('upper-cases methods', () => {
    const policy = parsePolicy('rules: [{ name: r, action: allow, to: { methods: [get, Post] } }]');
    expect(policy.rules[0]!.to!.methods).toEqual(['GET', 'POST']);
  });

  it('names the file, the path inside it and the reason', () => {
    const yaml = `
rules:
  - { name: a, action: allow }
  - { name: b, action: allow }
  - name: c
    action: allow
    from: { principals: ["spiffe:/x"] }
`;
    expect(problems(yaml)).toEqual([
      'policy.yaml: rules[2].from.principals[0]: "spiffe:/x" is not a SPIFFE ID: it must start with "spiffe://"',
    ]);
  });

  it.each([
    ['defaultAction: maybe', 'policy.yaml: defaultAction: must be one of "deny", "allow", not "maybe"'],
    ['explainDenials: "yes"', 'policy.yaml: explainDenials: must be true or false, not "yes"'],
    ['rules: [{ name: r, action: permit }]', 'policy.yaml: rules[0].action: must be one of '],
    ['rules: [{ action: allow }]', 'policy.yaml: rules[0].name: is required'],
    ['rules: [{ name: "my rule", action: allow }]', 'policy.yaml: rules[0].name: "my rule" is not a valid rule name'],
    ['rules: [{ name: default, action: allow }]', 'policy.yaml: rules[0].name: "default" is reserved'],
    ['rules: [{ name: r, action: allow, from: { principal: ["*"] } }]', 'policy.yaml: rules[0].from: unknown field "principal" (did you mean "principals"?)'],
    ['rules: [{ name: r, action: allow, to: { path: ["/x"] } }]', 'policy.yaml: rules[0].to: unknown field "path" (did you mean "paths"?)'],
    ['rules: [{ name: r, action: allow, form: {} }]', 'policy.yaml: rules[0]: unknown field "form" (did you mean "from"?)'],
    ['defaultActoin: allow', 'policy.yaml: unknown field "defaultActoin" (did you mean "defaultAction"?)'],
    ['rules: [{ name: r, action: allow, from: { principals: ["spiffe://example.org*"] } }]', 'rules[0].from.principals[0]: "spiffe://example.org*": a prefix must include the whole trust domain'],
    ['rules: [{ name: r, action: allow, from: { notPrincipals: ["web"] } }]', 'rules[0].from.notPrincipals[0]: "web" is not a SPIFFE ID'],
    ['rules: [{ name: r, action: allow, from: { ipBlocks: ["10.0.0.0/33"] } }]', 'rules[0].from.ipBlocks[0]: "10.0.0.0/33" is not a CIDR block'],
    ['rules: [{ name: r, action: allow, from: { notIpBlocks: ["ten"] } }]', 'rules[0].from.notIpBlocks[0]: "ten" is not a CIDR block'],
    ['rules: [{ name: r, action: allow, to: { hosts: ["orders:80"] } }]', 'rules[0].to.hosts[0]: "orders:80" is not a host name'],
    ['rules: [{ name: r, action: allow, to: { methods: ["GET ME"] } }]', 'rules[0].to.methods[0]: "GET ME" is not an HTTP method'],
    ['rules: [{ name: r, action: allow, to: { ports: [0] } }]', 'rules[0].to.ports[0]: 0 is not a port (an integer 1-65535)'],
    ['rules: [{ name: r, action: allow, to: { ports: [65536] } }]', 'rules[0].to.ports[0]: 65536 is not a port'],
    ['rules: [{ name: r, action: allow, to: { ports: ["80"] } }]', 'rules[0].to.ports[0]: "80" is not a port'],
    ['rules: [{ name: r, action: allow, to: { paths: ["api"] } }]', 'rules[0].to.paths[0]: "api" is not a valid path pattern: it must start with "/"'],
    ['rules: [{ name: r, action: allow, to: { notPaths: ["/a/%2f"] } }]', 'rules[0].to.notPaths[0]: "/a/%2f" is not a valid path pattern: the path contains an encoded slash'],
    ['rules: [{ name: r, action: allow, when: [{ key: "request.header[x]", values: [a] }] }]', 'rules[0].when[0].key: unknown key "request.header[x]"; expected one of request.headers[NAME]'],
    ['rules: [{ name: r, action: allow, when: [{ key: "source.ip", values: ["nope"] }] }]', 'rules[0].when[0].values[0]: "nope" is not a CIDR block'],
    ['rules: [{ name: r, action: allow, when: [{ key: "source.principal", values: ["x"] }] }]', 'rules[0].when[0].values[0]: "x" is not a SPIFFE ID'],
    ['rules: [{ name: r, action: allow, when: [{ key: "request.headers[x]", values: [] }] }]', 'rules[0].when[0].values: give at least one value'],
    ['rules: [{ name: r, action: allow, when: [{ key: "jwt.claims.scope", values: [a] }] }]', 'rules[0].when[0].key: "jwt.claims.scope" needs a jwt: section'],
    ['rules: [{ name: r, action: audit, dryRun: true }]', 'rules[0].dryRun: an audit rule decides nothing'],
    ['rules: [{ name: r, action: allow }, { name: r, action: deny }]', 'rules[1].name: duplicate rule name "r" (first used at rules[0])'],
    ['rateLimits: [{ name: l, requestsPerSecond: 0 }]', 'rateLimits[0].requestsPerSecond: must be greater than 0'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, burst: 0.5 }]', 'rateLimits[0].burst: must be a whole number'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, per: user }]', 'rateLimits[0].per: "user" is not a rate-limit key: use principal, apiKey, ip, global, header:NAME'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, per: "header:X Y" }]', 'rateLimits[0].per: "header:X Y" is not a rate-limit key'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, per: "claim:a..b" }]', 'rateLimits[0].per: "claim:a..b" is not a rate-limit key'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, per: "claim:sub" }]', 'rateLimits[0].per: "claim:sub" needs a jwt: section to verify tokens'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1, match: { principal: ["*"] } }]', 'rateLimits[0].match: unknown field "principal"'],
    ['rateLimits: [{ name: l, requestsPerSecond: 1 }, { name: l, requestsPerSecond: 2 }]', 'rateLimits[1].name: duplicate rate limit name "l"'],
    ['jwt: { issuer: i, audiences: [a] }', 'policy.yaml: jwt: give exactly one of jwksUri and jwksFile'],
    ['jwt: { issuer: i, audiences: [a], jwksUri: "https://x/j", jwksFile: j.json }', 'jwt: give exactly one of jwksUri and jwksFile'],
    ['jwt: { issuer: i, audiences: [], jwksFile: j.json }', 'jwt.audiences: name at least one audience'],
    ['jwt: { issuer: i, audiences: [a], jwksUri: "http://idp.example.org/jwks" }', 'jwt.jwksUri: must be an https:// URL'],
    ['jwt: { issuer: i, audiences: [a], jwksUri: "not a url" }', 'jwt.jwksUri: "not a url" is not a URL'],
    ['jwt: { issuer: i, audiences: [a], jwksFile: j.json, header: "x y" }', 'jwt.header: "x y" is not a header name'],
    ['rules: [', 'policy.yaml: invalid YAML'],
  ])('%s', (yaml, expected) => {
    const lines = problems(yaml);
    expect(lines.some((line) => line.includes(expected)), `${expected}\nnot in:\n${lines.join('\n')}`).toBe(true);
    // Plain words only, never the schema library's ("Invalid input: expected string, received undefined").
    expect(lines.join('\n')).not.toMatch(/Invalid (input|option)|expected \w+, received|Too (small|big)/);
  });

  it('reports every problem, one per line', () => {
    const lines = problems(`
rules:
  - name: web
    action: allow
    from: { principals: ["spiffe:/x", "*"], ipBlocks: ["300.0.0.0/8"] }
    to: { ports: [0], paths: ["x"] }
`);
    expect(lines).toHaveLength(4);
    expect(lines.every((line) => line.startsWith('policy.yaml: rules[0].'))).toBe(true);
  });

  it('accepts the example policy of the contract', () => {
    expect(
      problems(`
defaultAction: deny
explainDenials: true
rules:
  - name: web-reads-orders
    action: allow
    dryRun: false
    from:
      principals: ["spiffe://example.org/ns/default/sa/web", "spiffe://example.org/ns/team-a/*"]
      notPrincipals: []
      ipBlocks: ["10.0.0.0/8"]
    to:
      hosts: ["orders", "orders.default.svc"]
      methods: ["GET", "HEAD"]
      paths: ["/api/orders", "/api/orders/*", "/public/**"]
      notPaths: []
      ports: [8080]
    when:
      - { key: "request.headers[x-tenant]", values: ["a", "b"] }
      - { key: "jwt.claims.scope", values: ["orders.read"] }
rateLimits:
  - name: per-caller
    match: { principals: ["*"], paths: ["/api/**"] }
    requestsPerSecond: 100
    burst: 200
    per: principal
jwt:
  issuer: https://idp.example.org
  audiences: [orders]
  jwksUri: https://idp.example.org/.well-known/jwks.json
`),
    ).toEqual([]);
  });
});

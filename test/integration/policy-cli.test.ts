import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';

// The real CLI as a child process, against the fixtures in test/fixtures/policy (built with `npm run build`).
const FIXTURES = join(REPO_ROOT, 'test/fixtures/policy');
const POLICY = join(FIXTURES, 'orders.yaml');
const WEB = 'spiffe://example.org/ns/default/sa/web';

describe('meshward policy check', () => {
  it('prints a one-line summary of a valid policy and exits 0', async () => {
    const r = await runCli(['policy', 'check', POLICY]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe('orders.yaml: OK: 4 rules (2 allow, 1 deny, 1 audit; 1 dry run), 1 rate limit, defaultAction deny\n');
  });

  it('prints every problem as file: path: reason, the file as given, and exits 1 without the usage', async () => {
    // Relative to the working directory (the repository): errors name the file exactly so.
    const file = 'test/fixtures/policy/invalid.yaml';
    const r = await runCli(['policy', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('Usage:');
    const lines = r.stderr.trim().split('\n').slice(1);
    expect(lines.every((line) => line.startsWith(`${file}: `))).toBe(true);
    expect(lines).toEqual(
      expect.arrayContaining([
        `${file}: rules[0].from.principals[1]: "spiffe:/x" is not a SPIFFE ID: it must start with "spiffe://"`,
        expect.stringMatching(/invalid.yaml: rules\[0\].from: unknown field "principal" \(did you mean "principals"\?\)/),
        `${file}: rules[0].to.ports[0]: 0 is not a port (an integer 1-65535)`,
        `${file}: rules[0].to.paths[1]: "/a/%2Fb" is not a valid path pattern: the path contains an encoded slash (%2F)`,
        `${file}: rules[1].from.ipBlocks[0]: "10.0.0.0/33" is not a CIDR block: the prefix length must be 0-32`,
      ]),
    );
    expect(lines.length).toBeGreaterThanOrEqual(9);
  });

  it('says when the file does not exist', async () => {
    const r = await runCli(['policy', 'check', join(FIXTURES, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.yaml: file not found');
  });

  it('exits 2 with the usage for a wrong invocation', async () => {
    for (const args of [['policy'], ['policy', 'check'], ['policy', 'frob', POLICY], ['policy', 'check', POLICY, 'extra']]) {
      const r = await runCli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain('Usage:');
    }
  });

  it('prints its usage for --help', async () => {
    const r = await runCli(['policy', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('meshward policy explain FILE --path PATH');
  });
});

describe('meshward policy check: principals in another trust domain', () => {
  const POLICY_TWO_DOMAINS = join(FIXTURES, 'two-trust-domains.yaml');
  const warning = (path: string, owner: string, principal: string, domain: string, served: string) =>
    `warning: two-trust-domains.yaml: ${path}: ${owner} names ${principal}, in trust domain ${domain}, not ${served}: it never matches a caller`;

  it('warns of each, naming the rule and the principal, with --trust-domain; the exit code stays 0', async () => {
    const r = await runCli(['policy', 'check', POLICY_TWO_DOMAINS, '--trust-domain', 'example.org']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('two-trust-domains.yaml: OK: 2 rules (1 allow, 1 deny, 0 audit), 1 rate limit, defaultAction deny\n');
    expect(r.stderr.trim().split('\n')).toEqual([
      warning('rules[0].from.principals[1]', 'rule "partners-read"', 'spiffe://partner.net/ns/default/sa/web', 'partner.net', 'example.org'),
      warning('rules[0].from.notPrincipals[0]', 'rule "partners-read"', 'spiffe://partner.net/ns/legacy/*', 'partner.net', 'example.org'),
      warning('rules[1].when[0].values[0]', 'rule "tenant-check"', 'spiffe://other.org/ns/team-a/*', 'other.org', 'example.org'),
      warning('rateLimits[0].match.principals[0]', 'rate limit "partner-calls"', 'spiffe://partner.net', 'partner.net', 'example.org'),
    ]);
  });

  it('takes the trust domain from a sidecar config with --config', async () => {
    const { dir, cleanup } = tempDir('meshward-policy-check-');
    try {
      const config = join(dir, 'sidecar.yaml');
      writeFileSync(config, 'trustDomain: partner.net\nidentity: { files: { cert: a.pem, key: a.key, bundle: b.pem } }\ninbound: { listen: 127.0.0.1:0, app: http://127.0.0.1:1, policy: p.yaml }\n');
      const r = await runCli(['policy', 'check', POLICY_TWO_DOMAINS, '--config', config]);
      expect(r.code).toBe(0);
      expect(r.stderr.trim().split('\n')).toEqual([
        warning('rules[0].from.principals[0]', 'rule "partners-read"', 'spiffe://example.org/ns/default/sa/web', 'example.org', 'partner.net'),
        warning('rules[1].when[0].values[0]', 'rule "tenant-check"', 'spiffe://other.org/ns/team-a/*', 'other.org', 'partner.net'),
        warning('rules[1].when[0].values[1]', 'rule "tenant-check"', 'spiffe://example.org/ns/team-a/*', 'example.org', 'partner.net'),
      ]);
    } finally {
      cleanup();
    }
  });

  it('says nothing without a trust domain, and refuses a bad or doubly given one (exit 2)', async () => {
    expect(await runCli(['policy', 'check', POLICY_TWO_DOMAINS])).toMatchObject({ code: 0, stderr: '' });
    expect(await runCli(['policy', 'check', POLICY_TWO_DOMAINS, '--trust-domain', 'Example.org'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--trust-domain "Example.org": trust domain must be lower case'),
    });
    expect(await runCli(['policy', 'check', POLICY_TWO_DOMAINS, '--trust-domain', 'example.org', '--config', 'sidecar.yaml'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('give --trust-domain or --config, not both'),
    });
  });
});

describe('meshward policy explain', () => {
  const base = ['policy', 'explain', POLICY, '--principal', WEB, '--host', 'orders:8080', '--source-ip', '10.1.2.3', '--port', '8080'];

  it('explains a denial: the deciding rule, the normalised path and why each rule did not match', async () => {
    const r = await runCli([...base, '--path', '/api/orders/../../admin/users?x=1', '--header', 'x-tenant=a']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('decision: DENY by rule "no-admin": denied by rule "no-admin"\n');
    expect(r.stdout).toContain('path:     /admin/users  (normalised from "/api/orders/../../admin/users?x=1")\n');
    expect(r.stdout).toMatch(/^ {2}no-admin +deny +MATCH$/m);
    expect(r.stdout).toMatch(/^ {2}web-reads-orders +allow +no match {2}to\.paths: "\/admin\/users" matches none of \["\/api\/orders", "\/api\/orders\/\*", "\/public\/\*\*"\]$/m);
    expect(r.stdout).toMatch(/^ {2}billing-writes-orders +allow\* +no match {2}to\.methods: "GET" matches none of \["POST"\]$/m);
  });

  it('explains an allow, with headers, and reports rate limits without charging them', async () => {
    const r = await runCli([...base, '--path', '/api/orders/7', '--header', 'X-Tenant=b', '--method', 'get']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('decision: ALLOW by rule "web-reads-orders"');
    expect(r.stdout).toMatch(/^ {2}per-caller +MATCH$/m);
  });

  it('says why a request without the right header was denied', async () => {
    const r = await runCli([...base, '--path', '/api/orders']);
    expect(r.stdout).toContain('decision: DENY by default');
    expect(r.stdout).toContain('when[0] request.headers[x-tenant]: the request has no header "x-tenant" (expected one of ["a", "b"])');
  });

  it('refuses a path that cannot be judged, and says why', async () => {
    const r = await runCli([...base, '--path', '/api/orders%2F..%2Fadmin']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('decision: INVALID (400): the path contains an encoded slash (%2F)');
    expect(r.stdout).toContain('rules:    not evaluated');
  });

  it('prints machine-readable output with --json', async () => {
    const r = await runCli([...base, '--path', '/api/orders', '--header', 'x-tenant=a', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.decision).toEqual({ kind: 'allow', rule: 'web-reads-orders', principal: WEB });
    expect(out.target).toMatchObject({ ok: true, path: '/api/orders' });
    expect(out.rules).toHaveLength(4);
    expect(out.rules[0]).toEqual({ name: 'no-admin', action: 'deny', dryRun: false, matched: false, failed: { condition: 'to.paths', reason: '"/api/orders" matches none of ["/admin/**"]' } });
  });

  it('exits 0 when the request is allowed and 1 when it is not, so that a script can branch on it (like policy test)', async () => {
    const allowed = await runCli([...base, '--path', '/api/orders/7', '--header', 'x-tenant=a']);
    const denied = await runCli([...base, '--path', '/api/orders/7']);
    const deniedJson = await runCli([...base, '--path', '/admin/x', '--json']);
    expect([allowed.code, denied.code, deniedJson.code]).toEqual([0, 1, 1]);
    expect(denied.stdout).toContain('decision: DENY by default');
    expect(JSON.parse(deniedJson.stdout).decision).toMatchObject({ kind: 'deny', rule: 'no-admin' });
  });

  it('exits 2 for bad flags', async () => {
    for (const extra of [[], ['--path', '/x', '--header', 'novalue'], ['--path', '/x', '--port', '0'], ['--path', '/x', '--bogus']]) {
      const r = await runCli(['policy', 'explain', POLICY, ...extra]);
      expect({ extra, code: r.code }).toEqual({ extra, code: 2 });
    }
  });

  it('exits 1 without the usage when a flag does not fit the policy (--jwt, and no jwt section)', async () => {
    const r = await runCli(['policy', 'explain', POLICY, '--path', '/x', '--jwt', 'a.b.c']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('meshward policy: --jwt needs a policy with a jwt section\n');
  });

  it('exits 1 with the problems for an invalid policy', async () => {
    const r = await runCli(['policy', 'explain', join(FIXTURES, 'invalid.yaml'), '--path', '/']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid.yaml: rules[0].to.ports[0]: 0 is not a port');
  });
});

describe('meshward policy test', () => {
  it('passes every case of a correct table and exits 0', async () => {
    const r = await runCli(['policy', 'test', POLICY, join(FIXTURES, 'cases.yaml')]);
    expect(r.stdout).toBe(
      [
        'PASS  web reads an order',
        'PASS  admin is denied however it is spelt',
        'PASS  an encoded slash is refused',
        'PASS  strangers get the default',
        'PASS  a third request in the same second is limited',
        '5 passed, 0 failed (5 cases)',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
  });

  it('shows the difference for a failing case and exits 1', async () => {
    const r = await runCli(['policy', 'test', POLICY, join(FIXTURES, 'cases-failing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('PASS  web reads an order\n');
    expect(r.stdout).toContain('FAIL  this expectation is wrong: expected allow (rule "web-reads-orders"), got deny (rule "no-admin")\n');
    expect(r.stdout).toContain('1 passed, 1 failed (2 cases)\n');
  });

  it('validates the cases file like a policy: file, path and reason', async () => {
    const r = await runCli(['policy', 'test', POLICY, join(FIXTURES, 'cases-invalid.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cases-invalid.yaml: cases\[0\].expect: must be one of "allow", "deny", .*, not "/);
    expect(r.stderr).toContain('cases-invalid.yaml: cases[0].request: unknown field "hedaers" (did you mean "headers"?)');
  });

  it('checks that the rules a case names exist in the policy', async () => {
    const r = await runCli(['policy', 'test', POLICY, join(FIXTURES, 'cases-unknown-rule.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cases-unknown-rule.yaml: cases[0].rule: the policy has no rule named "no-such-rule"');
  });
});

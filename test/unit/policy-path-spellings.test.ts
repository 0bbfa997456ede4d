import { describe, expect, it } from 'vitest';
import { loadPolicyEngineFromText, type AuthzRequest, type Decision } from '../../src/authz/index.js';

// "No spelling of a denied path may reach an allow." Generates many spellings of denied paths (percent-encoding with
// either hex case, dot segments, dot segments with path parameters as Tomcat and Jetty resolve them, detours through
// other segments, repeated slashes, queries, fragments, a trailing slash) against a policy that allows everything
// else, and checks that every one is denied or refused.

const POLICY = `
defaultAction: deny
rules:
  - name: no-admin
    action: deny
    to: { paths: ["/admin/**", "/internal/keys"] }
  - name: everything-else
    action: allow
`;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function encodeChar(c: string, random: () => number): string {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${random() < 0.5 ? hex.toUpperCase() : hex.toLowerCase()}`;
}

/** One random spelling of `path` (which must start with `/`) that a lenient server would read as `path`. */
function spell(path: string, random: () => number): string {
  const segments = path.split('/').slice(1);
  const parts: string[] = random() < 0.2 ? ['', '..'] : [''];
  // Tomcat, Jetty and Spring drop a segment's ;parameters before resolving it: `..;x` is `..` to them.
  const withParameters = (dots: string) => (random() < 0.15 ? `${dots};${random() < 0.5 ? '' : 'jsessionid=1'}` : dots);
  for (const segment of segments) {
    if (random() < 0.2) parts.push(withParameters('.'));
    if (random() < 0.2) parts.push('decoy', withParameters(random() < 0.5 ? '..' : encodeChar('.', random) + encodeChar('.', random)));
    if (random() < 0.2) parts.push('');
    parts.push([...segment].map((c) => (random() < 0.3 ? encodeChar(c, random) : c)).join(''));
  }
  let spelt = parts.join('/');
  if (random() < 0.2) spelt += '/';
  if (random() < 0.1) spelt += '/.';
  if (random() < 0.2) spelt += random() < 0.5 ? '?q=1' : '?next=/admin&x=%2F';
  if (random() < 0.1) spelt += '#top';
  return spelt.startsWith('/') ? spelt : `/${spelt}`;
}

function request(path: string): AuthzRequest {
  return { principal: 'spiffe://example.org/ns/default/sa/web', method: 'GET', host: 'orders', path, headers: {} };
}

describe('no spelling of a denied path reaches an allow', () => {
  const { engine } = loadPolicyEngineFromText(POLICY);

  it.each(['/admin', '/admin/users', '/admin/users/42/delete', '/internal/keys'])('%s', async (denied) => {
    const random = prng(denied.length * 7919);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const spelling = spell(denied, random);
      const decision: Decision = await engine.decide(request(spelling));
      outcomes[decision.kind] = (outcomes[decision.kind] ?? 0) + 1;
      if (decision.kind !== 'deny' && decision.kind !== 'invalid') {
        expect.fail(`${JSON.stringify(spelling)} (a spelling of ${denied}) was not denied: ${JSON.stringify(decision)}`);
      }
    }
    // Most spellings are valid paths that must be judged, not merely refused.
    expect(outcomes.deny).toBeGreaterThan(1000);
  });

  it('the generator is not trivially denying: the same spellings of an allowed path are allowed', async () => {
    const random = prng(42);
    for (let i = 0; i < 500; i++) {
      const spelling = spell('/api/orders', random);
      const decision = await engine.decide(request(spelling));
      if (spelling.includes('#') || /(^|\/)(\.|%2e){1,2};/i.test(spelling)) expect({ spelling, kind: decision.kind }).toEqual({ spelling, kind: 'invalid' });
      else expect({ spelling, kind: decision.kind }).toEqual({ spelling, kind: 'allow' });
    }
  });
});

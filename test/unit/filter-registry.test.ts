import { describe, expect, it } from 'vitest';
import { registry } from '../../src/filters/index.js';

// The registry: one entry per built-in filter, under the name a `filters:` list uses, with a settings schema that
// refuses what the filter would not understand.

describe('the filter registry', () => {
  it('names every factory by its own name', () => {
    for (const [name, factory] of Object.entries(registry)) expect(factory.name).toBe(name);
    expect(Object.keys(registry)).toEqual(expect.arrayContaining(['headerChecks', 'limits', 'peerAuthentication', 'authz']));
  });

  it('checks settings: authz takes exactly one of policy and extAuthz, and no unknown field', () => {
    const authz = registry.authz!.settings;
    expect(authz.safeParse({ policy: 'p.yaml' }).success).toBe(true);
    expect(authz.safeParse({ extAuthz: { address: '127.0.0.1:9191' } }).success).toBe(true);
    expect(authz.safeParse({}).success).toBe(false);
    expect(authz.safeParse({ policy: 'p.yaml', extAuthz: { address: '127.0.0.1:9191' } }).success).toBe(false);
    expect(authz.safeParse({ polcy: 'p.yaml' }).success).toBe(false);
    expect(registry.peerAuthentication!.settings.safeParse({ optional: true }).success).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('meshward CLI', () => {
  it('lists every subcommand in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const name of ['ca', 'sidecar', 'authz', 'policy', 'inject', 'injector', 'audit', 'demo']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });

  it('names an unknown command and exits 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});

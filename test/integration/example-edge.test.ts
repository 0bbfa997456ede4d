import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registry } from '../../src/filters/index.js';
import { REPO_ROOT, runCli, tempDir } from '../helpers/cli.js';
import { OpensslPki } from '../helpers/openssl-pki.js';

// Issue 15, "Done means": a config with every filter is in examples/ and passes `meshward sidecar --check-config`.
// The example comes without certificates (no key material is committed): they are made as its comments say.

const EXAMPLE = join(REPO_ROOT, 'examples/edge');
/** The filters every listener builds itself; a `filters:` list cannot name them. */
const FIXED = ['headerChecks', 'limits', 'peerAuthentication'];

describe('examples/edge/sidecar.yaml', () => {
  it('passes --check-config once its certificates are made, with every built-in filter on its ingress', { timeout: 120_000 }, async () => {
    const { dir, cleanup } = tempDir('meshward-example-edge-');
    try {
      cpSync(EXAMPLE, dir, { recursive: true });
      const certs = join(dir, 'certs');
      for (const args of [
        ['ca', 'init', '--trust-domain', 'example.org', '--dir', join(certs, 'ca')],
        ['ca', 'issue', '--dir', join(certs, 'ca'), '--spiffe-id', 'spiffe://example.org/ns/edge/sa/gateway', '--out', join(certs, 'gateway')],
      ]) {
        expect((await runCli(args)).code).toBe(0);
      }
      new OpensslPki(certs).run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost', '-keyout', 'edge.key', '-out', 'edge.pem');
      const file = join(dir, 'sidecar.yaml');
      const checked = await runCli(['sidecar', '--config', file, '--check-config']);
      expect(checked.stderr).toBe('');
      expect(checked.code).toBe(0);
      const ingress = /; ingress: (.*)$/m.exec(checked.stdout)?.[1]?.split(' → ');
      expect(ingress).toEqual(['headerChecks', 'limits', 'ipList', 'cors', 'apiKey', 'jwt', 'rateLimit', 'authz', 'validate', 'headers', 'mask']);
      for (const name of Object.keys(registry).filter((n) => !FIXED.includes(n))) expect(ingress, `${name} is a built-in filter`).toContain(name);
    } finally {
      cleanup();
    }
  });

  it('commits no API key: its key file holds names and SHA-256 hashes only', () => {
    const keys = readFileSync(join(EXAMPLE, 'api-keys.yaml'), 'utf8');
    expect(keys).toMatch(/^ {4}sha256: [0-9a-f]{64}$/m);
    expect(keys).not.toMatch(/mw_/);
  });
});

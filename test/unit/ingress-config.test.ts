import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sidecarConfigSchema } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { sidecarConfigProblems as problems } from '../helpers/config-problems.js';

// `ingress:` in the sidecar's config (issue 15, section 2), checked without starting anything.

const ORDERS = 'spiffe://example.org/ns/default/sa/orders';
const base = {
  trustDomain: 'example.org',
  identity: { files: { cert: 'svid.pem', key: 'svid.key', bundle: 'bundle.pem' } },
  outbound: { listen: '127.0.0.1:15001', routes: [{ host: 'Orders', address: '127.0.0.1:16006', spiffeId: ORDERS }, { host: 'orders:9090', address: '127.0.0.1:16007', spiffeId: ORDERS }] },
};
const ingress = (extra: object = {}) => ({ ...base, ingress: { listen: '0.0.0.0:8443', tls: { cert: 'edge.pem', key: 'edge.key' }, routes: [{ prefix: '/api', to: 'orders' }], ...extra } });

/** README's sidecar example, and its ingress example (the yaml block after "**Ingress (the edge).**"). */
function readmeExamples(): { sidecar: Record<string, unknown>; ingress: Record<string, unknown> } {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const block = (from: string) => parse(/```yaml\n([\s\S]+?)```/.exec(readme.slice(readme.indexOf(from)))![1]!) as Record<string, unknown>;
  return { sidecar: block('## The sidecar'), ingress: block('**Ingress (the edge).**') };
}

describe('ingress config', () => {
  it('accepts the example in README, with the meaning it describes', () => {
    const { sidecar, ingress: example } = readmeExamples();
    const config = sidecarConfigSchema.parse({ ...sidecar, ...example });
    expect(config.ingress).toMatchObject({
      listen: { host: '0.0.0.0', port: 8443 },
      tls: { minVersion: 'TLSv1.2' },
      routes: [{ prefix: '/api/orders', methods: ['GET', 'POST'], to: 'orders' }, { prefix: '/health', to: 'orders', filters: { apiKey: false } }],
    });
  });

  it('fills in the defaults: TLS 1.2 and up, the limits every listener has, drop underscores', () => {
    const config = sidecarConfigSchema.parse(ingress({ routes: [{ prefix: '/api/', methods: ['GET'], to: 'ORDERS:9090', filters: { cors: false } }] }));
    expect(config.ingress).toMatchObject({
      listen: { host: '0.0.0.0', port: 8443 },
      tls: { cert: 'edge.pem', key: 'edge.key', minVersion: 'TLSv1.2' },
      headersWithUnderscores: 'drop',
      routes: [{ prefix: '/api/', methods: ['GET'], to: 'orders:9090', filters: { cors: false } }],
    });
    expect(config.ingress!.limits).toEqual(config.outbound!.limits);
  });

  it('refuses what cannot work, naming the field', () => {
    expect(problems(ingress({ routes: [{ prefix: '/api', to: 'payments' }] }))).toEqual(['sidecar.yaml: ingress.routes[0].to: no outbound route for host "payments"']);
    expect(problems({ ...ingress(), outbound: undefined })).toEqual([
      'sidecar.yaml: ingress.routes[0].to: no outbound route for host "orders" (there is no outbound listener: its routes are where ingress routes go)',
    ]);
    for (const prefix of ['api', '/api/../admin', '/api//x', '/api/.', '/a%2Fb', '/api?x', '/api#x', '']) {
      expect(problems(ingress({ routes: [{ prefix, to: 'orders' }] })), prefix).toEqual([
        `sidecar.yaml: ingress.routes[0].prefix: "${prefix}" is not a normalised path ("/", "/api", "/api/"): no "." or ".." segments, no "//", no percent-encoding, query or fragment`,
      ]);
    }
    expect(problems(ingress({ routes: [{ prefix: '/', to: 'orders', methods: ['get'] }] }))).toEqual([
      'sidecar.yaml: ingress.routes[0].methods[0]: must be an HTTP method in capitals (GET, POST, ...)',
    ]);
    expect(problems(ingress({ routes: [] }))).toEqual(['sidecar.yaml: ingress.routes: must list at least one route']);
    expect(problems(ingress({ tls: { cert: 'edge.pem', key: 'edge.key', minVersion: 'TLSv1.1' } }))).toEqual([
      'sidecar.yaml: ingress.tls.minVersion: must be TLSv1.3 (the default) or TLSv1.2',
    ]);
    expect(problems(ingress({ tls: undefined }))).toEqual(['sidecar.yaml: ingress.tls: is required']);
  });
});

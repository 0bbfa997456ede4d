import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { inboundEntries, sidecarConfigSchema, type InboundConfig } from '../../src/config/index.js';
import { sidecarConfigProblems as problems } from '../helpers/config-problems.js';
import { REPO_ROOT } from '../helpers/cli.js';

// The sidecar's config contract (issue 4), checked without starting anything: the example README shows, the
// defaults, and the refusals, each naming the field.

/** The first ```yaml block after README's "## The sidecar" heading. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The sidecar'));
  return /```yaml\n([\s\S]+?)```/.exec(section)![1]!;
}

const minimal = {
  trustDomain: 'example.org',
  identity: { files: { cert: 'svid.pem', key: 'svid.key', bundle: 'bundle.pem' } },
  inbound: { listen: '127.0.0.1:15006', app: 'http://127.0.0.1:8080', policy: 'policy.yaml' },
};

describe('sidecar config', () => {
  it('accepts the example in README, with the meaning it describes', () => {
    const config = sidecarConfigSchema.parse(parse(readmeExample()));
    const inbound = config.inbound as InboundConfig;
    expect(inbound.app).toEqual({ protocol: 'http', address: { host: '127.0.0.1', port: 8080 } });
    expect(inbound.limits).toMatchObject({ maxHeaderBytes: 16384, maxBodyBytes: 10485760, headersTimeout: 10_000, requestTimeout: 30_000 });
    expect(config.outbound!.routes).toEqual([
      { host: 'orders', address: { host: '127.0.0.1', port: 16006 }, spiffeId: 'spiffe://example.org/ns/default/sa/orders' },
    ]);
    expect(config.drainTimeout).toBe(10_000);
  });

  it('fills in the defaults a user would expect', () => {
    const config = sidecarConfigSchema.parse(minimal);
    const inbound = config.inbound as InboundConfig;
    expect(inbound.minTlsVersion).toBe('TLSv1.3');
    expect(inbound.limits).toEqual({
      maxHeaderBytes: 16384,
      maxBodyBytes: 10485760,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      idleTimeout: 60_000,
      handshakeTimeout: 5_000,
      maxConnections: 10_000,
      maxConcurrentStreams: 256,
      maxConcurrentStreamsPerPeer: 1024,
      maxResetsPerConnection: 300,
      maxResetsPerPeer: 2000,
      peerCooldown: 30_000,
    });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 15000 });
    // An audit log rotates at 64 MiB and keeps every rotated file unless told otherwise.
    expect(sidecarConfigSchema.parse({ ...minimal, audit: { path: 'audit.jsonl' } }).audit).toEqual({ path: 'audit.jsonl', maxFileBytes: 64 * 1024 * 1024 });
  });

  it('reads a filters: list as one filter per entry, a name with its settings or a module', () => {
    const config = sidecarConfigSchema.parse({ ...minimal, inbound: { ...minimal.inbound, filters: [{ cors: { origins: ['https://a.example'] } }, { jwt: null }, { module: './f.mjs', settings: { a: 1 } }] } });
    expect((config.inbound as InboundConfig).filters).toEqual([
      { name: 'cors', settings: { origins: ['https://a.example'] } },
      { name: 'jwt', settings: {} },
      { module: './f.mjs', settings: { a: 1 } },
    ]);
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, filters: [{ cors: {}, jwt: {} }, {}, { module: './f.mjs', other: 1 }] } })).toEqual([
      'sidecar.yaml: inbound.filters[0]: each filter is "- NAME: {settings}" or "- module: ./file.mjs" (with "settings:" beside it); this one has the keys cors, jwt',
      'sidecar.yaml: inbound.filters[1]: each filter is "- NAME: {settings}" or "- module: ./file.mjs" (with "settings:" beside it); this one has no key',
      'sidecar.yaml: inbound.filters[2]: each filter is "- NAME: {settings}" or "- module: ./file.mjs" (with "settings:" beside it); this one has the keys module, other',
    ]);
    // Without policy or extAuthz, an authz entry must say how to authorize (filters/build-chain.ts checks its settings).
    const { policy: _policy, ...unauthorized } = minimal.inbound;
    expect(problems({ ...minimal, inbound: { ...unauthorized, filters: [{ authz: { policy: 'p.yaml' } }] } })).toEqual([]);
    expect(problems({ ...minimal, inbound: { ...unauthorized, filters: [{ cors: {} }] } })).toEqual([
      'sidecar.yaml: inbound: give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server), or an authz filter in filters: an inbound chain that does not authorize is refused (meshward denies by default)',
    ]);
  });

  it('refuses what cannot work, naming the field', () => {
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, extAuthz: { address: '127.0.0.1:9001' } } })).toEqual([
      'sidecar.yaml: inbound: give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server)',
    ]);
    expect(problems({ ...minimal, identity: {} })).toEqual(['sidecar.yaml: identity: give exactly one identity source: files or ca']);
    expect(problems({ ...minimal, inbound: undefined })).toEqual([
      'sidecar.yaml: give inbound, outbound, sds or workloadApi (any of them, or several): a sidecar with none has nothing to do',
    ]);
    const route = { host: 'Orders', address: '127.0.0.1:16006', spiffeId: 'spiffe://example.org/ns/default/sa/orders' };
    expect(problems({ ...minimal, outbound: { listen: '127.0.0.1:0', routes: [route, { ...route, host: 'orders' }] } })).toEqual([
      'sidecar.yaml: outbound.routes[1].host: "orders" has a route already',
    ]);
    // A route may name the port it is for; the same host on another port is another route.
    expect(problems({ ...minimal, outbound: { listen: '127.0.0.1:0', routes: [route, { ...route, host: 'orders:9090' }, { ...route, host: '[fd00::1]:9090' }] } })).toEqual([]);
    expect(problems({ ...minimal, outbound: { listen: '127.0.0.1:0', routes: [{ ...route, host: 'orders:9090' }, { ...route, host: 'ORDERS:9090' }] } })).toEqual([
      'sidecar.yaml: outbound.routes[1].host: "orders:9090" has a route already',
    ]);
    for (const host of ['orders:0', 'orders:65536', 'orders:']) {
      expect(problems({ ...minimal, outbound: { listen: '127.0.0.1:0', routes: [{ ...route, host }] } })).toEqual([
        `sidecar.yaml: outbound.routes[0].host: "${host}" is not NAME or NAME:PORT (a port from 1 to 65535)`,
      ]);
    }
    expect(problems({ ...minimal, outbound: { listen: '127.0.0.1:0', routes: [{ ...route, spiffeId: 'spiffe://other.org/sa/x' }] } })).toEqual([
      'sidecar.yaml: outbound.routes[0].spiffeId: spiffe://other.org/sa/x is not in the trust domain example.org',
    ]);
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, limits: { headersTimeout: '40s' } } })).toEqual([
      'sidecar.yaml: inbound.limits.headersTimeout: must not be longer than requestTimeout (30000 ms)',
    ]);
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, minTlsVersion: 'TLSv1.1' } })).toEqual([
      'sidecar.yaml: inbound.minTlsVersion: must be TLSv1.3 (the default) or TLSv1.2',
    ]);
    expect(problems({ ...minimal, audit: { path: 'audit.jsonl', keepFiles: 0, maxFileBytes: 1.5 } })).toEqual([
      'sidecar.yaml: audit.maxFileBytes: audit.maxFileBytes must be a whole number of bytes',
      'sidecar.yaml: audit.keepFiles: audit.keepFiles must be at least 1',
    ]);
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, listen: 'localhost' } })).toEqual([
      'sidecar.yaml: inbound.listen: "localhost" is not HOST:PORT (or [IPv6]:PORT) for a listener (port 0 picks a free one)',
    ]);
  });

  it('says in plain words what is missing or of the wrong kind, never in the schema library\'s', () => {
    const found = problems({
      identity: { ca: { address: '127.0.0.1:8443', bundle: 5, spiffeId: 'spiffe://example.org/ns/default/sa/web' } },
      inbound: { ...minimal.inbound, limits: { maxConnections: 0 } },
      admin: [],
      log: { level: 'loud' },
      drainTimeout: 10,
    });
    expect(found).toEqual([
      'sidecar.yaml: trustDomain: is required',
      'sidecar.yaml: identity.ca.bundle: must be a string, not 5',
      'sidecar.yaml: identity.ca.token: is required',
      'sidecar.yaml: inbound.limits.maxConnections: must be at least 1',
      'sidecar.yaml: admin: must be a mapping (key: value), not a list',
      'sidecar.yaml: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", not "loud"',
      'sidecar.yaml: drainTimeout: must be a string, not 10',
    ]);
    expect(problems({ ...minimal, inbound: { ...minimal.inbound, policy: '' } })).toEqual(['sidecar.yaml: inbound.policy: must not be empty']);
    expect(problems([minimal])).toEqual(['sidecar.yaml: must be a mapping (key: value), not a list']);
  });

  it('inbound: one listener, or a list of them (one per app port), each checked on its own and named by its index', () => {
    const second = { listen: '127.0.0.1:15007', app: 'h2c://127.0.0.1:9090', extAuthz: { address: '127.0.0.1:9001' }, limits: { maxConnections: 5 } };
    const config = sidecarConfigSchema.parse({ ...minimal, inbound: [minimal.inbound, second] });
    const entries = inboundEntries(config.inbound);
    expect(entries.map((e) => e.path)).toEqual([['inbound', 0], ['inbound', 1]]);
    expect(entries[0]!.inbound).toEqual(sidecarConfigSchema.parse(minimal).inbound);
    expect(entries[1]!.inbound).toMatchObject({ app: { protocol: 'h2c', address: { host: '127.0.0.1', port: 9090 } }, limits: { maxConnections: 5, maxBodyBytes: 10485760 } });
    // A single mapping stays as written, named "inbound" in errors as before.
    expect(inboundEntries(sidecarConfigSchema.parse(minimal).inbound).map((e) => e.path)).toEqual([['inbound']]);

    expect(problems({ ...minimal, inbound: [minimal.inbound, { ...second, app: 'grpc://127.0.0.1:9090', limits: { maxConnections: 0 } }] })).toEqual([
      'sidecar.yaml: inbound[1].app: "grpc://127.0.0.1:9090" is not http://HOST:PORT, h2c://HOST:PORT or tcp://HOST:PORT',
      'sidecar.yaml: inbound[1].limits.maxConnections: must be at least 1',
    ]);
    expect(problems({ ...minimal, inbound: [minimal.inbound, { ...second, policy: 'policy.yaml' }] })).toEqual([
      'sidecar.yaml: inbound[1]: give exactly one of policy (the in-process engine) or extAuthz (a remote ext_authz server)',
    ]);
    expect(problems({ ...minimal, inbound: [minimal.inbound, { ...second, polcy: 'x' }] })).toEqual([
      'sidecar.yaml: inbound[1]: unknown field "polcy" (did you mean "policy"?); known fields: listen, app, headersWithUnderscores, policy, extAuthz, minTlsVersion, limits, filters',
    ]);
    expect(problems({ ...minimal, inbound: [minimal.inbound, 'x'] })).toEqual(['sidecar.yaml: inbound[1]: must be a mapping (key: value), not "x"']);
    expect(problems({ ...minimal, inbound: [] })).toEqual(['sidecar.yaml: inbound: must have at least one entry']);
    expect(problems({ ...minimal, inbound: 'x' })).toEqual(['sidecar.yaml: inbound: must be a mapping (key: value) or a list, not "x"']);
  });

  it('inbound: two listeners on one port are refused, naming both; port 0 (a free port each) may repeat', () => {
    const at = (listen: string, app: string) => ({ ...minimal.inbound, listen, app });
    expect(problems({ ...minimal, inbound: [at('127.0.0.1:15006', 'http://127.0.0.1:8080'), at('0.0.0.0:15007', 'h2c://127.0.0.1:9090'), at('0.0.0.0:15006', 'tcp://127.0.0.1:6379')] })).toEqual([
      "sidecar.yaml: inbound[2].listen: port 15006 is inbound[0]'s already: each inbound listener needs a port of its own",
    ]);
    expect(problems({ ...minimal, inbound: [at('127.0.0.1:0', 'http://127.0.0.1:8080'), at('127.0.0.1:0', 'h2c://127.0.0.1:9090')] })).toEqual([]);
  });

  it('identity.ca: a start deadline of 5 minutes unless given; the state directory is left to the loader', () => {
    const ca = { address: '127.0.0.1:8443', bundle: 'bundle.pem', spiffeId: 'spiffe://example.org/ns/default/sa/web', token: 'env:T' };
    expect(sidecarConfigSchema.parse({ ...minimal, identity: { ca } }).identity.ca).toEqual({ ...ca, address: { host: '127.0.0.1', port: 8443 }, ttl: 3_600_000, startDeadline: 300_000 });
    expect(sidecarConfigSchema.parse({ ...minimal, identity: { ca: { ...ca, startDeadline: '30s', stateDir: 'state' } } }).identity.ca).toMatchObject({ startDeadline: 30_000, stateDir: 'state' });
    expect(problems({ ...minimal, identity: { ca: { ...ca, startDeadline: '0s' } } })).toEqual(['sidecar.yaml: identity.ca.startDeadline: startDeadline: "0s" must be longer than zero']);
  });

  it('keeps secrets out of the file: a CA token is a reference, never the token', () => {
    const ca = { address: '127.0.0.1:8443', bundle: 'bundle.pem', spiffeId: 'spiffe://example.org/ns/default/sa/web' };
    expect(problems({ ...minimal, identity: { ca: { ...ca, token: 'env:MESHWARD_JOIN_TOKEN' } } })).toEqual([]);
    expect(problems({ ...minimal, identity: { ca: { ...ca, token: 'file:/var/run/secrets/meshward/token' } } })).toEqual([]);
    expect(problems({ ...minimal, identity: { ca: { ...ca, token: 'eyJhbGciOiJFUzI1NiJ9.e30.sig' } } })).toEqual([
      'sidecar.yaml: identity.ca.token: must be env:VARIABLE or file:PATH (the token itself never goes in the config)',
    ]);
  });
});

// The Envoy bootstraps in deploy/envoy/ are checked against Envoy's official protos (envoy-config.ts), and the SDS
// one against what meshward serves: the resource names, and the socket the sidecar config next to it listens on.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { sidecarConfigSchema } from '../../src/config/index.js';
import { DEFAULT_SVID_NAME, ROOT_CA_NAME } from '../../src/identity-api/sds-secrets.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { envoyConfigProblems } from './envoy-config.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ENVOY_DIR = join(REPO_ROOT, 'deploy/envoy');
const read = (file: string) => parse(readFileSync(join(ENVOY_DIR, file), 'utf8'), { uniqueKeys: true }) as Obj;
const bootstraps = readdirSync(ENVOY_DIR).filter((f) => /^envoy.*\.yaml$/.test(f));

describe('deploy/envoy: every bootstrap is one Envoy accepts (checked against the official protos)', () => {
  it.each(bootstraps)('%s', (file) => {
    expect(envoyConfigProblems(read(file))).toEqual([]);
  });

  it('the check finds what Envoy would refuse', () => {
    const config = read('envoy-sds.yaml');
    const cluster = config.static_resources.clusters[0];
    cluster.typo_field = 1;
    cluster.type = 'STATIK';
    cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: '127.0.0.1', port_value: 1 };
    config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config['@type'] = 'type.googleapis.com/envoy.no.such.v3.Thing';
    expect(envoyConfigProblems(config)).toEqual([
      'bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config: "@type" "type.googleapis.com/envoy.no.such.v3.Thing" is not a message of the Envoy API',
      'bootstrap.static_resources.clusters[0].type: "STATIK" is not one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST',
      'bootstrap.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address: socket_address and pipe are one choice (address): give one',
      'bootstrap.static_resources.clusters[0].typo_field: Cluster has no field "typo_field"',
    ]);
  });
});

describe('deploy/envoy/envoy-sds.yaml: certificates from meshward over SDS', () => {
  const envoy = read('envoy-sds.yaml');
  const sidecar = sidecarConfigSchema.parse(read('sidecar-sds.yaml'));
  const transportSockets = [...(envoy.static_resources.listeners as Obj[]).flatMap((l) => (l.filter_chains as Obj[]).map((c) => c.transport_socket)), ...(envoy.static_resources.clusters as Obj[]).map((c) => c.transport_socket)]
    .filter((t): t is Obj => t !== undefined);

  it('every TLS context takes its SVID (`default`) and trust bundle (`ROOTCA`) from meshward_sds, over gRPC state of the world', () => {
    expect(transportSockets.length).toBeGreaterThanOrEqual(3);
    for (const socket of transportSockets) {
      const context = socket.typed_config.common_tls_context as Obj;
      expect(context.tls_certificates).toBeUndefined();
      expect(context.validation_context).toBeUndefined();
      const svid = context.tls_certificate_sds_secret_configs as Obj[];
      const roots = context.combined_validation_context.validation_context_sds_secret_config as Obj;
      expect(svid.map((s) => s.name)).toEqual([DEFAULT_SVID_NAME]);
      expect(roots.name).toBe(ROOT_CA_NAME);
      for (const { sds_config: sds } of [...svid, roots]) {
        expect(sds).toEqual({
          resource_api_version: 'V3',
          api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'meshward_sds' } }] },
        });
      }
      // A peer must prove a SPIFFE ID of the trust domain (or the one exact ID the cluster expects).
      const san = (context.combined_validation_context.default_validation_context.match_typed_subject_alt_names as Obj[])[0]!;
      expect(san.san_type).toBe('URI');
      expect(san.matcher.exact ?? san.matcher.prefix).toMatch(new RegExp(`^spiffe://${sidecar.trustDomain}/`));
    }
    const inbound = transportSockets[0]!.typed_config;
    expect(inbound.require_client_certificate).toBe(true);
  });

  it('reaches SDS over HTTP/2 on the Unix socket the sidecar config beside it serves; that sidecar serves nothing else', () => {
    const cluster = (envoy.static_resources.clusters as Obj[]).find((c) => c.name === 'meshward_sds')!;
    const { pipe } = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
    expect(sidecar.sds).toEqual({ listen: { path: pipe.path } });
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toEqual({ http2_protocol_options: {} });
    expect([sidecar.inbound, sidecar.outbound]).toEqual([undefined, undefined]);
  });

  it('README\'s "Envoy as the data plane" shows these files as they are', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Envoy as the data plane'));
    const [sidecarYaml, envoyYaml] = [...section.matchAll(/```yaml\n([\s\S]+?)```/g)].map((m) => m[1]!);
    const shown = sidecarConfigSchema.parse(parse(sidecarYaml!));
    expect([shown.sds, shown.identity.ca!.spiffeId, shown.inbound, shown.outbound]).toEqual([sidecar.sds, sidecar.identity.ca!.spiffeId, undefined, undefined]);
    const [tls, cluster] = parseAllDocuments(envoyYaml!).map((d) => d.toJS() as Obj);
    expect(envoyConfigProblems(tls, 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext')).toEqual([]);
    expect(envoyConfigProblems(cluster, 'envoy.config.cluster.v3.Cluster')).toEqual([]);
    expect(tls!.common_tls_context).toEqual(transportSockets[0]!.typed_config.common_tls_context);
    expect(cluster).toEqual((envoy.static_resources.clusters as Obj[]).find((c) => c.name === 'meshward_sds'));
  });

  it('asks meshward authz on every inbound request, failing closed, as envoy.yaml does', () => {
    const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config as Obj;
    const extAuthz = (hcm.http_filters as Obj[]).find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config;
    const reference = (read('envoy.yaml').static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters as Obj[])[0]!.typed_config;
    expect(extAuthz).toEqual(reference);
    expect((hcm.http_filters as Obj[]).map((f) => f.name)).toEqual(['envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
  });
});

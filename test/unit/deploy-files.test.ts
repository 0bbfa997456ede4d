// The deployment files are code too: the Kubernetes manifests match the Kubernetes schema and agree with what
// `meshward inject` assumes, the Dockerfile builds a non-root image without secrets, and the Envoy bootstrap points
// its ext_authz filter where docs/kubernetes.md says meshward authz listens.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { DEFAULT_CA_ADDRESS, DEFAULT_TRUST_DOMAIN, defaultImage } from '../../src/kube/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { kubernetesSchemaErrors } from '../helpers/kube-schema.js';

const KUBE_DIR = join(REPO_ROOT, 'deploy/kubernetes');
const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string }; devDependencies: Record<string, string> };
const VERSION = PACKAGE.version;
/** The Node.js major line the project runs on: engines, the `node` dev dependency the tests run on, the image and CI agree. */
const NODE_MAJOR = /\d+/.exec(PACKAGE.engines.node)![0];

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function manifests(): { file: string; object: Obj }[] {
  return readdirSync(KUBE_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(KUBE_DIR, file), 'utf8'), { uniqueKeys: true }).map((doc) => {
        expect(doc.errors, file).toEqual([]);
        return { file, object: doc.toJS() as Obj };
      }),
    );
}

const find = (kind: string, name: string) => manifests().find((m) => m.object.kind === kind && m.object.metadata.name === name)!.object;
const podSpecs = () => manifests().filter((m) => m.object.kind === 'Deployment').map((m) => m.object.spec.template.spec as Obj);

describe('deploy/kubernetes', () => {
  it('every manifest parses and matches the Kubernetes schema', async () => {
    const all = manifests();
    expect(all.map((m) => `${m.file}: ${m.object.kind}`)).toEqual(expect.arrayContaining([
      'namespace.yaml: Namespace',
      'ca.yaml: ServiceAccount',
      'ca.yaml: ClusterRoleBinding',
      'ca.yaml: Deployment',
      'ca.yaml: Service',
      'injector.yaml: Deployment',
      'injector.yaml: Service',
      'injector.yaml: MutatingWebhookConfiguration',
      'trust-bundle.yaml: ConfigMap',
    ]));
    expect(await kubernetesSchemaErrors(all.map(({ file, object }) => ({ label: file, object })))).toEqual([]);
  });

  it('holds no key material: Secrets are referred to, never defined', () => {
    expect(manifests().filter((m) => m.object.kind === 'Secret')).toEqual([]);
    for (const file of readdirSync(KUBE_DIR)) expect(readFileSync(join(KUBE_DIR, file), 'utf8')).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    const volumes = podSpecs().flatMap((s) => s.volumes as Obj[]);
    expect(volumes.filter((v) => v.secret).map((v) => v.secret.secretName).sort()).toEqual(['meshward-ca-key', 'meshward-injector-tls']);
  });

  it('runs every pod non-root, read-only, without privileges (the "restricted" standard)', () => {
    expect(find('Namespace', 'meshward-system').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const spec of podSpecs()) {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of [...(spec.initContainers ?? []), ...spec.containers] as Obj[]) {
        expect(c.securityContext, c.name).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        expect(c.image, c.name).toBe(defaultImage(VERSION));
      }
    }
  });

  it('grants the CA only issuer discovery, and the injector nothing', () => {
    const kinds = manifests().map((m) => m.object.kind);
    expect(kinds).not.toContain('Role');
    expect(kinds).not.toContain('ClusterRole');
    expect(kinds.filter((k) => k === 'ClusterRoleBinding' || k === 'RoleBinding')).toEqual(['ClusterRoleBinding']);
    const binding = find('ClusterRoleBinding', 'meshward-ca-issuer-discovery');
    expect(binding.roleRef.name).toBe('system:service-account-issuer-discovery');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'meshward-ca', namespace: 'meshward-system' }]);
    expect(find('ServiceAccount', 'meshward-injector').automountServiceAccountToken).toBe(false);
    expect(find('Deployment', 'meshward-injector').spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('wires the webhook to the injector as the API server requires', () => {
    const [hook] = find('MutatingWebhookConfiguration', 'meshward-injector').webhooks as Obj[];
    expect(hook).toMatchObject({
      failurePolicy: 'Fail',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      namespaceSelector: { matchLabels: { 'meshward.io/inject': 'enabled' } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
      clientConfig: { service: { name: 'meshward-injector', namespace: 'meshward-system', path: '/mutate', port: 443 } },
    });
    const service = find('Service', 'meshward-injector');
    expect(service.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https' }]);
    const container = find('Deployment', 'meshward-injector').spec.template.spec.containers[0] as Obj;
    expect(container.ports).toEqual([{ name: 'https', containerPort: 8443, protocol: 'TCP' }]);
    const args = container.args as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--listen')).toBe('0.0.0.0:8443');
    expect(container.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    // What the injector tells sidecars agrees with the CA it deploys, and with `meshward inject`'s defaults.
    expect(flag('--trust-domain')).toBe(DEFAULT_TRUST_DOMAIN);
    expect(flag('--ca-address')).toBe(DEFAULT_CA_ADDRESS);
    expect(flag('--image')).toBe(defaultImage(VERSION));
  });

  it('serves the CA where sidecars are told to find it, for the trust domain they are told', () => {
    const ca = find('Service', 'meshward-ca');
    expect(`${ca.metadata.name}.${ca.metadata.namespace}.svc:${ca.spec.ports[0].port}`).toBe(DEFAULT_CA_ADDRESS);
    const pod = find('Deployment', 'meshward-ca').spec.template.spec;
    expect(pod.containers[0].args.slice(0, 6)).toEqual(['ca', 'serve', '--dir', '/var/lib/meshward-ca', '--listen', '0.0.0.0:8443']);
    // Pods bootstrap with their projected service-account tokens, verified against the cluster issuer's keys.
    const flags = Object.fromEntries(pod.containers[0].args.slice(6).map((a: string, i: number, all: string[]) => (i % 2 ? [] : [a, all[i + 1]])).filter((p: string[]) => p.length));
    expect(flags).toEqual({
      '--admin': '0.0.0.0:9090',
      '--k8s-issuer': 'https://kubernetes.default.svc.cluster.local',
      '--k8s-api-ca': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      '--k8s-token-file': '/var/run/secrets/kubernetes.io/serviceaccount/token',
    });
    expect(pod.initContainers[0].command.join(' ')).toContain(`ca init --trust-domain ${DEFAULT_TRUST_DOMAIN} --dir /var/lib/meshward-ca`);
    for (const name of ['meshward-ca', 'meshward-injector']) {
      expect(find('Deployment', name).spec.template.metadata.annotations['meshward.io/inject']).toBe('false');
    }
  });

  it('probes the CA and lets Prometheus scrape it on the admin listener its --admin flag opens', () => {
    const template = find('Deployment', 'meshward-ca').spec.template;
    const container = template.spec.containers[0] as Obj;
    const args = container.args as string[];
    const adminPort = Number(args[args.indexOf('--admin') + 1]!.split(':')[1]);
    expect(container.ports).toContainEqual({ name: 'admin', containerPort: adminPort, protocol: 'TCP' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(adminPort), 'prometheus.io/path': '/metrics' });
    // The Service carries gRPC only: the admin listener is for the kubelet and Prometheus, which reach the pod.
    expect(find('Service', 'meshward-ca').spec.ports.map((p: Obj) => p.name)).toEqual(['grpc-tls']);
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');
  const instructions = DockerfileParser.parse(text).getInstructions();
  const stages: Instruction[][] = [];
  for (const i of instructions) {
    if (i.getKeyword() === 'FROM') stages.push([]);
    stages.at(-1)?.push(i);
  }
  const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
  const runs = (stage: Instruction[]) => stage.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
  const runtime = stages.at(-1)!;

  it('builds in stages on the Node.js line package.json names: npm ci + build, then production dependencies alone', () => {
    expect(PACKAGE.devDependencies.node?.split('.')[0]).toBe(NODE_MAJOR);
    expect(process.versions.node.split('.')[0]).toBe(NODE_MAJOR);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(args(stage[0]!)[0]).toMatch(new RegExp(`^node:${NODE_MAJOR}[-.]`));
    expect(runs(stages[0]!).join('\n')).toMatch(/npm ci[\s\S]*npm run build/);
    expect(stages.some((s) => runs(s).some((r) => /npm ci --omit=dev/.test(r)))).toBe(true);
    // The one package install: the iptables that `meshward capture` (the meshward-init container) runs.
    expect(runs(runtime)).toEqual(['apk add --no-cache iptables ip6tables']);
  });

  it('runs as a non-root user with the meshward entry point', () => {
    const user = runtime.filter((i) => i.getKeyword() === 'USER').map((i) => args(i)[0]!);
    expect(user).toEqual(['65532:65532']);
    const entrypoints = runtime.filter((i) => i.getKeyword() === 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    expect(JSON.parse(entrypoints[0]!.getArgumentsContent()!)).toEqual(['node', '/app/bin/meshward.js']);
  });

  it('copies no secrets, and only sources that exist', () => {
    expect(instructions.filter((i) => i.getKeyword() === 'ADD')).toEqual([]);
    for (const copy of instructions.filter((i): i is Copy => i instanceof Copy)) {
      const fromStage = copy.getFlags().some((f) => f.getName() === 'from');
      for (const source of args(copy).slice(0, -1)) {
        expect(source).not.toMatch(/\.(key|pem|env)$|secret|credential|certs/i);
        if (!fromStage) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
      }
    }
    expect(instructions.filter((i) => ['ARG', 'ENV'].includes(i.getKeyword())).map((i) => i.getArgumentsContent())).not.toContainEqual(expect.stringMatching(/SECRET|TOKEN|PASSWORD|PASSPHRASE/i));
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toEqual(expect.arrayContaining(['*', '**/*.key', '**/*.pem']));
  });
});

describe('deploy/envoy/envoy.yaml', () => {
  const envoy = parse(readFileSync(join(REPO_ROOT, 'deploy/envoy/envoy.yaml'), 'utf8'), { uniqueKeys: true }) as Obj;
  const chain = envoy.static_resources.listeners[0].filter_chains[0] as Obj;
  const hcm = chain.filters[0].typed_config as Obj;
  const extAuthz = (hcm.http_filters as Obj[]).find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config as Obj;

  it('asks meshward over gRPC v3 on every request, failing closed, with the peer certificate', () => {
    expect(extAuthz).toMatchObject({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      transport_api_version: 'V3',
      failure_mode_allow: false,
      include_peer_certificate: true,
      grpc_service: { envoy_grpc: { cluster_name: 'meshward_authz' } },
    });
    expect(extAuthz.grpc_service.timeout).toMatch(/^\d+(\.\d+)?s$/);
    expect((hcm.http_filters as Obj[]).map((f) => f.name)).toEqual(['envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
    // The peer certificate exists only because the listener requires one.
    expect(chain.transport_socket.typed_config.require_client_certificate).toBe(true);
  });

  it('points the meshward_authz cluster where docs/kubernetes.md runs meshward authz, over mutual TLS and HTTP/2', () => {
    const cluster = (envoy.static_resources.clusters as Obj[]).find((c) => c.name === 'meshward_authz')!;
    const { address, port_value } = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(`${address}:${port_value}`).toBe('127.0.0.1:9001');
    const docs = readFileSync(join(REPO_ROOT, 'docs/kubernetes.md'), 'utf8');
    expect(docs).toMatch(/meshward authz [^\n]*--listen 127\.0\.0\.1:9001/);
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toEqual({ http2_protocol_options: {} });
    const tls = cluster.transport_socket.typed_config as Obj;
    expect(tls['@type']).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    expect(tls.common_tls_context.tls_certificates).toHaveLength(1);
    expect(tls.common_tls_context.validation_context.match_typed_subject_alt_names[0]).toMatchObject({ san_type: 'URI', matcher: { exact: expect.stringMatching(/^spiffe:\/\//) } });
  });
});
